package patch_test

import (
	"errors"
	"testing"

	"infusion/fhir"
	"infusion/fhir/fhirtest"
	"infusion/fhir/model"
	"infusion/fhir/patch"
)

const observation = `{"resourceType":"Observation","status":"final","code":{"text":"pain"},
	"category":[{"text":"a"},{"text":"b"},{"text":"c"}],"valueQuantity":{"value":7.0,"unit":"{score}"}}`

func tree(t *testing.T, s string) map[string]any {
	t.Helper()
	r, err := fhir.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return r.Tree
}

func operation(parts string) string {
	return `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[` + parts + `]}]}`
}

func TestFHIRPathPatch(t *testing.T) {
	m, err := model.Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, op, want string
		err            error
	}{
		{"replace a primitive", `{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Observation.status"},{"name":"value","valueCode":"amended"}`,
			`{"resourceType":"Observation","status":"amended","code":{"text":"pain"},"category":[{"text":"a"},{"text":"b"},{"text":"c"}],"valueQuantity":{"value":7.0,"unit":"{score}"}}`, nil},
		{"replace a choice with another type", `{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Observation.value"},{"name":"value","valueString":"none"}`,
			`{"resourceType":"Observation","status":"final","code":{"text":"pain"},"category":[{"text":"a"},{"text":"b"},{"text":"c"}],"valueString":"none"}`, nil},
		{"add a choice element", `{"name":"type","valueCode":"add"},{"name":"path","valueString":"Observation"},{"name":"name","valueString":"effective"},{"name":"value","valueDateTime":"2026-03-01"}`,
			`{"resourceType":"Observation","status":"final","code":{"text":"pain"},"category":[{"text":"a"},{"text":"b"},{"text":"c"}],"valueQuantity":{"value":7.0,"unit":"{score}"},"effectiveDateTime":"2026-03-01"}`, nil},
		{"add to a list, from parts", `{"name":"type","valueCode":"add"},{"name":"path","valueString":"Observation"},{"name":"name","valueString":"category"},{"name":"value","part":[{"name":"text","valueString":"d"}]}`,
			`{"resourceType":"Observation","status":"final","code":{"text":"pain"},"category":[{"text":"a"},{"text":"b"},{"text":"c"},{"text":"d"}],"valueQuantity":{"value":7.0,"unit":"{score}"}}`, nil},
		{"add a first item to a list", `{"name":"type","valueCode":"add"},{"name":"path","valueString":"Observation"},{"name":"name","valueString":"note"},{"name":"value","valueAnnotation":{"text":"n"}}`,
			`{"resourceType":"Observation","status":"final","code":{"text":"pain"},"category":[{"text":"a"},{"text":"b"},{"text":"c"}],"valueQuantity":{"value":7.0,"unit":"{score}"},"note":[{"text":"n"}]}`, nil},
		{"delete an item", `{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.category[1]"}`,
			`{"resourceType":"Observation","status":"final","code":{"text":"pain"},"category":[{"text":"a"},{"text":"c"}],"valueQuantity":{"value":7.0,"unit":"{score}"}}`, nil},
		{"delete nothing", `{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.note"}`, observation, nil},
		{"insert", `{"name":"type","valueCode":"insert"},{"name":"path","valueString":"Observation.category"},{"name":"index","valueInteger":0},{"name":"value","valueCodeableConcept":{"text":"z"}}`,
			`{"resourceType":"Observation","status":"final","code":{"text":"pain"},"category":[{"text":"z"},{"text":"a"},{"text":"b"},{"text":"c"}],"valueQuantity":{"value":7.0,"unit":"{score}"}}`, nil},
		{"move", `{"name":"type","valueCode":"move"},{"name":"path","valueString":"Observation.category"},{"name":"source","valueInteger":2},{"name":"destination","valueInteger":0}`,
			`{"resourceType":"Observation","status":"final","code":{"text":"pain"},"category":[{"text":"c"},{"text":"a"},{"text":"b"}],"valueQuantity":{"value":7.0,"unit":"{score}"}}`, nil},
		{"replace of several", `{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Observation.category"},{"name":"value","valueString":"x"}`, "", patch.ErrNotApplicable},
		{"first()", `{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Observation.category.first()"},{"name":"value","valueCodeableConcept":{"text":"q"}}`,
			`{"resourceType":"Observation","status":"final","code":{"text":"pain"},"category":[{"text":"q"},{"text":"b"},{"text":"c"}],"valueQuantity":{"value":7.0,"unit":"{score}"}}`, nil},
		{"unknown type", `{"name":"type","valueCode":"frobnicate"},{"name":"path","valueString":"Observation.status"}`, "", patch.ErrInvalid},
		{"path outside the subset", `{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.category.where(text='a')"}`, "", patch.ErrInvalid},
		{"path of another type", `{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Patient.name"}`, "", patch.ErrInvalid},
		{"move past the end", `{"name":"type","valueCode":"move"},{"name":"path","valueString":"Observation.category"},{"name":"source","valueInteger":7},{"name":"destination","valueInteger":0}`, "", patch.ErrNotApplicable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tree(t, observation)
			err := patch.FHIRPathPatch(m, doc, tree(t, operation(tt.op)))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := fhir.Marshal(doc)
			if same, _ := fhirtest.EqualJSON(got, []byte(tt.want)); !same {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestJSONPatch(t *testing.T) {
	out, err := patch.JSONPatch([]byte(observation), []byte(`[{"op":"replace","path":"/status","value":"amended"},{"op":"remove","path":"/category/0"}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Observation","status":"amended","code":{"text":"pain"},"category":[{"text":"b"},{"text":"c"}],"valueQuantity":{"value":7.0,"unit":"{score}"}}`
	if same, _ := fhirtest.EqualJSON(out, []byte(want)); !same {
		t.Errorf("got %s", out)
	}
	if _, err := patch.JSONPatch([]byte(observation), []byte(`{"op":"x"}`)); !errors.Is(err, patch.ErrInvalid) {
		t.Errorf("a patch that is not a list: %v", err)
	}
	if _, err := patch.JSONPatch([]byte(observation), []byte(`[{"op":"test","path":"/status","value":"draft"}]`)); !errors.Is(err, patch.ErrNotApplicable) {
		t.Errorf("a failing test: %v", err)
	}
	if _, err := patch.JSONPatch([]byte(observation), []byte(`[{"op":"remove","path":"/nothing"}]`)); !errors.Is(err, patch.ErrNotApplicable) {
		t.Errorf("a missing path: %v", err)
	}
}
