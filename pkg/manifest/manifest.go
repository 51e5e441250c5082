// Package manifest is the proof a payment order carries: finance signs
// each confirmed batch's manifest (the batch, its funding source, control
// count and sum, and every ordered item with its amount) with an Ed25519 key
// only finance holds, and payout pays nothing that is not in a manifest it
// verified.
//
// A manifest is a signed header plus parts. The header holds the SHA-256
// digest of each part (PartSize items, ascending application ID), so a
// 50,000-item batch costs one signature, one verification and one pass of
// SHA-256 over about 2 MB, and each part is checked against the header on
// its own as it arrives: a forged part is refused without holding up the
// genuine one. A reissued order is a single event and is signed on its own
// (SignReissue). Every signed input is a canonical encoding of this package
// (fixed-width integers, length-prefixed strings, UUIDs as 16 bytes) after
// a domain-separating tag, never a protobuf encoding.
package manifest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/google/uuid"
)

// Version is the canonical encoding's version, signed in every header.
const Version = 1

// PartSize is how many items a part carries: about 100 KB of event, well
// inside a relay frame (natsx.MaxFrameBytes).
const PartSize = 1000

// Domain-separation tags: a signature made for one kind of object never
// verifies as another, nor as anything else a key might sign.
const (
	headerTag  = "studentaid/finance/batch-manifest/v1\x00"
	partTag    = "studentaid/finance/batch-manifest-part/v1\x00"
	reissueTag = "studentaid/finance/payment-reissue/v1\x00"
)

// Errors of verification. Each names why payout refuses what it was sent.
var (
	// ErrUnknownKey: the key ID is not among the verifying keys.
	ErrUnknownKey = errors.New("signed by an unknown key")
	// ErrBadSignature: the signature does not verify under the named key.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrPartMismatch: a part is not the one the signed header names.
	ErrPartMismatch = errors.New("manifest part does not match the signed header")
	// ErrMalformed: a value cannot be encoded canonically (not a UUID,
	// unordered items, counts out of range).
	ErrMalformed = errors.New("malformed manifest")
)

// Batch is what a header says about the confirmed batch.
type Batch struct {
	ID            string
	ProgramCode   string
	Term          string
	FundingSource string
	ControlCount  int64
	ControlSumFen int64
}

// Item is one ordered item. PaymentID is the first order's payment ID.
type Item struct {
	ApplicationID string
	PaymentID     string
	AmountFen     int64
}

// Header is a signed manifest header.
type Header struct {
	Batch
	KeyID       string
	PartSize    int
	PartDigests [][]byte
	Signature   []byte
}

// PartCount is the number of parts a batch of n items has.
func PartCount(n int64, partSize int) int {
	if n <= 0 || partSize <= 0 {
		return 0
	}
	return int((n + int64(partSize) - 1) / int64(partSize))
}

// PartLen is how many items part index of h holds.
func (h Header) PartLen(index int) int {
	if index < 0 || index >= len(h.PartDigests) {
		return 0
	}
	if index < len(h.PartDigests)-1 {
		return h.PartSize
	}
	return int(h.ControlCount) - h.PartSize*(len(h.PartDigests)-1)
}

// Build sorts items into canonical order, cuts them into parts and returns
// the header signed by s's current key with the parts. It refuses items that
// do not add up to b's control totals.
func Build(b Batch, items []Item, s *Signer) (Header, [][]Item, error) {
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(x, y Item) int { return compareUUIDText(x.ApplicationID, y.ApplicationID) })
	var sum int64
	for _, it := range sorted {
		sum += it.AmountFen
	}
	if int64(len(sorted)) != b.ControlCount || sum != b.ControlSumFen {
		return Header{}, nil, fmt.Errorf("%w: %d items / %d fen, control totals %d / %d", ErrMalformed, len(sorted), sum, b.ControlCount, b.ControlSumFen)
	}
	h := Header{Batch: b, KeyID: s.KeyID(), PartSize: PartSize}
	parts := slices.Collect(slices.Chunk(sorted, PartSize))
	for i, p := range parts {
		d, err := PartDigest(b.ID, i, p)
		if err != nil {
			return Header{}, nil, err
		}
		h.PartDigests = append(h.PartDigests, d)
	}
	msg, err := h.signedInput()
	if err != nil {
		return Header{}, nil, err
	}
	h.Signature = s.sign(msg)
	return h, parts, nil
}

// Verify checks h's signature under v's key of the ID h names, and that its
// shape is consistent: as many digests as its count and part size make.
func (v *Verifier) Verify(h Header) error {
	if h.ControlCount <= 0 || h.ControlSumFen <= 0 || h.PartSize <= 0 ||
		len(h.PartDigests) != PartCount(h.ControlCount, h.PartSize) {
		return fmt.Errorf("%w: header of batch %s: %d items, part size %d, %d parts", ErrMalformed, h.ID, h.ControlCount, h.PartSize, len(h.PartDigests))
	}
	msg, err := h.signedInput()
	if err != nil {
		return err
	}
	return v.verify(h.KeyID, msg, h.Signature)
}

// CheckPart checks that items are part index of the manifest h signs. h
// must have been verified.
func (h Header) CheckPart(index int, items []Item) error {
	if index < 0 || index >= len(h.PartDigests) {
		return fmt.Errorf("%w: part %d of batch %s, which has %d", ErrPartMismatch, index, h.ID, len(h.PartDigests))
	}
	if len(items) != h.PartLen(index) {
		return fmt.Errorf("%w: part %d of batch %s holds %d items, the header says %d", ErrPartMismatch, index, h.ID, len(items), h.PartLen(index))
	}
	d, err := PartDigest(h.ID, index, items)
	if err != nil {
		return err
	}
	if !bytes.Equal(d, h.PartDigests[index]) {
		return fmt.Errorf("%w: part %d of batch %s: digest differs", ErrPartMismatch, index, h.ID)
	}
	return nil
}

// PartDigest is the SHA-256 of part index's canonical encoding. Items must
// be in strictly ascending application ID order with positive amounts.
func PartDigest(batchID string, index int, items []Item) ([]byte, error) {
	h := sha256.New()
	e := encoder{w: h}
	e.raw(partTag)
	e.uuid(batchID)
	e.u32(index)
	e.u32(len(items))
	var prev [16]byte
	for i, it := range items {
		app := e.uuid(it.ApplicationID)
		if i > 0 && bytes.Compare(app[:], prev[:]) <= 0 {
			return nil, fmt.Errorf("%w: part %d: application %s out of order", ErrMalformed, index, it.ApplicationID)
		}
		prev = app
		if it.PaymentID == "" {
			e.raw("\x00")
		} else {
			e.raw("\x01")
			e.uuid(it.PaymentID)
		}
		if it.AmountFen <= 0 {
			return nil, fmt.Errorf("%w: application %s: amount %d fen", ErrMalformed, it.ApplicationID, it.AmountFen)
		}
		e.i64(it.AmountFen)
	}
	if e.err != nil {
		return nil, e.err
	}
	return h.Sum(nil), nil
}

// signedInput is the header's canonical encoding.
func (h Header) signedInput() ([]byte, error) {
	var buf bytes.Buffer
	e := encoder{w: &buf}
	e.raw(headerTag)
	e.u32(Version)
	e.str(h.KeyID)
	e.uuid(h.ID)
	e.str(h.ProgramCode)
	e.str(h.Term)
	e.str(h.FundingSource)
	e.i64(h.ControlCount)
	e.i64(h.ControlSumFen)
	e.u32(h.PartSize)
	e.u32(len(h.PartDigests))
	for _, d := range h.PartDigests {
		if len(d) != sha256.Size {
			return nil, fmt.Errorf("%w: a part digest of %d bytes", ErrMalformed, len(d))
		}
		e.bytes(d)
	}
	return buf.Bytes(), e.err
}

// Reissue is a reissued payment order: the only order not proven by its
// batch's manifest alone, so finance signs it on its own.
type Reissue struct {
	BatchID       string
	ApplicationID string
	PaymentID     string
	AmountFen     int64
	Attempt       int32
}

func (r Reissue) signedInput(keyID string) ([]byte, error) {
	var buf bytes.Buffer
	e := encoder{w: &buf}
	e.raw(reissueTag)
	e.str(keyID)
	e.uuid(r.BatchID)
	e.uuid(r.ApplicationID)
	e.uuid(r.PaymentID)
	e.i64(r.AmountFen)
	e.u32(int(r.Attempt))
	return buf.Bytes(), e.err
}

// SignReissue signs r with s's current key.
func (s *Signer) SignReissue(r Reissue) (keyID string, sig []byte, err error) {
	msg, err := r.signedInput(s.KeyID())
	if err != nil {
		return "", nil, err
	}
	return s.KeyID(), s.sign(msg), nil
}

// VerifyReissue checks a reissue's signature.
func (v *Verifier) VerifyReissue(r Reissue, keyID string, sig []byte) error {
	msg, err := r.signedInput(keyID)
	if err != nil {
		return err
	}
	return v.verify(keyID, msg, sig)
}

// encoder writes the canonical encoding; the first error sticks.
type encoder struct {
	w io.Writer
	b [8]byte
	// err is the first value that could not be encoded.
	err error
}

func (e *encoder) raw(s string) { _, _ = e.w.Write([]byte(s)) }

func (e *encoder) bytes(b []byte) { _, _ = e.w.Write(b) }

func (e *encoder) u32(n int) {
	if n < 0 || n > 1<<31-1 {
		e.fail(fmt.Errorf("%w: %d out of range", ErrMalformed, n))
		n = 0
	}
	binary.BigEndian.PutUint32(e.b[:4], uint32(n))
	_, _ = e.w.Write(e.b[:4])
}

func (e *encoder) i64(n int64) {
	binary.BigEndian.PutUint64(e.b[:], uint64(n)) //nolint:gosec // G115: the bits are the encoding; signs are checked by the callers
	_, _ = e.w.Write(e.b[:])
}

func (e *encoder) str(s string) {
	e.u32(len(s))
	_, _ = e.w.Write([]byte(s))
}

// uuid writes id's 16 bytes; only the canonical lowercase text form is
// accepted, so one UUID has one encoding and one sort order.
func (e *encoder) uuid(id string) [16]byte {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		e.fail(fmt.Errorf("%w: %q is not a UUID in canonical form", ErrMalformed, id))
	}
	_, _ = e.w.Write(u[:])
	return u
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// compareUUIDText orders canonical UUIDs as their bytes: lowercase hex text
// sorts the same way.
func compareUUIDText(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// verify checks sig over msg under the key keyID names. A nil Verifier
// knows no key.
func (v *Verifier) verify(keyID string, msg, sig []byte) error {
	var pub ed25519.PublicKey
	ok := false
	if v != nil {
		pub, ok = v.keys[keyID]
	}
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownKey, keyID)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w under key %q", ErrBadSignature, keyID)
	}
	return nil
}
