package gateway

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// encodeGRPCMessage percent-encodes a grpc-message as the gRPC HTTP/2
// protocol requires (printable ASCII except '%' passes through).
func encodeGRPCMessage(msg string) string {
	var b strings.Builder
	for i := range len(msg) {
		c := msg[i]
		if c >= ' ' && c <= '~' && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// base64Raw encodes a -bin header value (unpadded, as gRPC sends it).
func base64Raw(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }
