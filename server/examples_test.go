package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"infusion/fhir/fhirtest"
	"infusion/server"
)

// TestValidExamples posts every example of testdata/resources/valid and
// reads it back unchanged: extensions, primitive extensions, contained
// resources and decimal text such as 0.50 survive.
func TestValidExamples(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	files, _ := filepath.Glob("../testdata/resources/valid/*.json")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body := example(t, "valid/"+filepath.Base(f))
			var head struct{ ResourceType string }
			json.Unmarshal([]byte(body), &head)
			id := ts.create(t, head.ResourceType, body)
			r := ts.do(t, http.MethodGet, "/"+head.ResourceType+"/"+id, "")
			assertSameResource(t, body, r.body)
		})
	}
}

// TestInvalidExamples posts every case of testdata/resources/invalid: each
// must be refused with its status and an issue naming its element, and none
// may leave a trace.
func TestInvalidExamples(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	data, err := os.ReadFile("../testdata/resources/invalid/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Cases []struct {
			File, Defect, Expression string
			PostTo                   string `json:"post_to"`
			Status                   int
		}
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Cases {
		t.Run(c.File, func(t *testing.T) {
			r := ts.do(t, http.MethodPost, "/"+c.PostTo, example(t, "invalid/"+c.File))
			if r.status != c.Status {
				t.Fatalf("%s: status %d, want %d: %s", c.Defect, r.status, c.Status, r.body)
			}
			if exprs := r.issueExpressions(t); !contains(exprs, c.Expression) {
				t.Errorf("%s: issues name %v, want %s\n%s", c.Defect, exprs, c.Expression, r.body)
			}
		})
	}
	if n := ts.historyCount(t); n != 0 {
		t.Errorf("%d versions stored from invalid input", n)
	}
}

// TestOfficialExamples creates every official R4 example of the three types
// and reads each back, semantically identical.
func TestOfficialExamples(t *testing.T) {
	dir := filepath.Join(fhirtest.SharedDir(t), "fhir", "examples")
	ts := newTestServer(t, server.Config{})
	n := 0
	for _, typ := range []string{"MedicationRequest", "MedicationAdministration", "Observation"} {
		files, _ := filepath.Glob(filepath.Join(dir, typ, "*.json"))
		more, _ := filepath.Glob(filepath.Join(dir, "from-bundles", typ, "*.json"))
		for _, f := range append(files, more...) {
			n++
			t.Run(typ+"/"+filepath.Base(f), func(t *testing.T) {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				body := string(data)
				r := ts.do(t, http.MethodPost, "/"+typ, body)
				if want, bad := fhirtest.KnownBadExamples[filepath.Base(f)]; bad {
					if r.status != http.StatusBadRequest || !contains(r.issueExpressions(t), want) {
						t.Errorf("want 400 naming %s, got %d %s", want, r.status, r.body)
					}
					return
				}
				if r.status != http.StatusCreated {
					t.Fatalf("create: %d %s", r.status, r.body)
				}
				id, _ := r.json(t)["id"].(string)
				got := ts.do(t, http.MethodGet, "/"+typ+"/"+id, "")
				assertSameResource(t, body, got.body)
				// The example's own id works with update too (create on update;
				// some examples share an id, so the second one updates).
				var head struct{ ID string }
				json.Unmarshal(data, &head)
				if head.ID != "" {
					if r := ts.do(t, http.MethodPut, "/"+typ+"/"+head.ID, body); r.status != http.StatusCreated && r.status != http.StatusOK {
						t.Errorf("update with the example's id: %d %s", r.status, r.body)
					}
				}
			})
		}
	}
	t.Logf("%d official examples", n)
}
