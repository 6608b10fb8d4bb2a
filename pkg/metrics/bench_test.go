package metrics

import "testing"

func BenchmarkEncode8GPU(b *testing.B) {
	s := fullSample(8)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = Encode(s)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/sample")
}

func BenchmarkDecode8GPU(b *testing.B) {
	buf, err := Encode(fullSample(8))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/sample")
}
