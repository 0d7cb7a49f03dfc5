package store_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"infusion/fhir"
	"infusion/fhir/model"
	"infusion/fhir/search"
	"infusion/mapping"
	"infusion/store"
)

// BenchmarkPut measures the store alone: parallel creates of an infusion
// order with its model rows and search index rows, group-committed.
func BenchmarkPut(b *testing.B) {
	s := openStore(b)
	body, err := os.ReadFile("../testdata/resources/valid/medicationrequest-ketamine-crps.json")
	if err != nil {
		b.Fatal(err)
	}
	r, err := fhir.Parse(body)
	if err != nil {
		b.Fatal(err)
	}
	rows, err := mapping.NewMapper(mapping.DefaultClassifier()).Map("MedicationRequest", "x", body)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load()
	if err != nil {
		b.Fatal(err)
	}
	reg, err := search.NewRegistry(m, "", "MedicationRequest")
	if err != nil {
		b.Fatal(err)
	}
	index := reg.Extract("MedicationRequest", r.Tree)
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("o%d", n.Add(1))
			p, _ := r.Prepare(id)
			err := s.Update(context.Background(), func(tx store.Writer) error {
				_, _, err := tx.Put(store.Put{Type: "MedicationRequest", ID: id, Create: true, Body: p, Rows: rows, Index: index})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
