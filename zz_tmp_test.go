package masterless

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func BenchmarkZZWindow(b *testing.B) {
	for _, w := range []int{1 << 20, 4 << 20} {
		b.Run(fmt.Sprint(w>>10, "KiB"), func(b *testing.B) {
			cnt := newCounter()
			sink := func(*Server, string, []byte) { cnt.hit() }
			a := benchServer(b, "a", nil, WithWindow(w))
			bb := benchServer(b, "b", sink, WithWindow(w))
			benchConnect(b, a, bb)
			cnt.want.Store(int64(b.N))
			payload := make([]byte, benchPayload)
			b.ResetTimer()
			start := time.Now()
			ctx := context.Background()
			for range b.N {
				if err := a.SendContext(ctx, "b", payload); err != nil {
					b.Fatal(err)
				}
			}
			<-cnt.done
			report(b, b.N, time.Since(start))
		})
	}
}
