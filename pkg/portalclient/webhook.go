package portalclient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header a webhook delivery's signature comes in.
const SignatureHeader = "Aid-Signature"

// SignatureTolerance is how far a delivery's signing time may be from the
// receiver's clock before VerifyWebhook refuses it as a replay.
const SignatureTolerance = 5 * time.Minute

// ErrBadSignature is returned by VerifyWebhook for a delivery that is not
// the platform's, was changed, or is too old.
var ErrBadSignature = errors.New("portalclient: webhook signature does not verify")

// VerifyWebhook checks a delivery's Aid-Signature header ("t=<unix
// seconds>,v1=<hex>") against its raw body with the webhook's secret (as
// CreateWebhook returned it): the HMAC-SHA256 of "<t>." and the body, signed
// within SignatureTolerance of now. Verify before parsing the body.
func VerifyWebhook(secret, header string, body []byte, now time.Time) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrBadSignature
	}
	if now.Sub(time.Unix(sec, 0)).Abs() > SignatureTolerance {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}
