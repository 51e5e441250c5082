package portalclient

import (
	"errors"
	"testing"
	"time"
)

func TestVerifyWebhook(t *testing.T) {
	const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
	body := []byte(`{"webhookId":"w"}`)
	at := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC) // 1796428800
	// HMAC-SHA256(secret, "1796428800." + body), computed apart from this code.
	const good = "t=1796428800,v1=f90ed60ab78f244e2cafe262896e7ad1b871633be63de1e64b5ebe151752cf17"
	tests := []struct {
		name, header string
		body         []byte
		now          time.Time
		ok           bool
	}{
		{"signed", good, body, at, true},
		{"four minutes later", good, body, at.Add(4 * time.Minute), true},
		{"six minutes later", good, body, at.Add(6 * time.Minute), false},
		{"body changed", good, []byte(`{"webhookId":"x"}`), at, false},
		{"time changed", "t=1796428801,v1=f90ed60ab78f244e2cafe262896e7ad1b871633be63de1e64b5ebe151752cf17", body, at, false},
		{"no signature", "t=1796428800", body, at, false},
		{"not hex", "t=1796428800,v1=zz", body, at, false},
		{"empty", "", body, at, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyWebhook(secret, tt.header, tt.body, tt.now)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadSignature)) {
				t.Errorf("VerifyWebhook = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
