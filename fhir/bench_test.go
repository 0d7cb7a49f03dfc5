package fhir_test

// Benchmarks of the wire layer: parsing a resource and preparing it for storage.

import (
	"os"
	"testing"
	"time"

	"infusion/fhir"
)

func BenchmarkPrepare(b *testing.B) {
	data, _ := os.ReadFile("../testdata/resources/valid/medicationrequest-ketamine-crps.json")
	r, err := fhir.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, _ := r.Prepare("x")
		_ = p.Bytes(1, time.Now())
	}
}

func BenchmarkParse(b *testing.B) {
	data, _ := os.ReadFile("../testdata/resources/valid/medicationrequest-ketamine-crps.json")
	b.ReportAllocs()
	for b.Loop() {
		fhir.Parse(data)
	}
}
