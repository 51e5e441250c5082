package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	"github.com/edubureau/studentaid/services/application/anchor"
)

// applicationClient dials the application service with the auditor token
// in AID_TOKEN.
func applicationClient(addr string) (applicationv1.ApplicationServiceClient, func(), error) {
	if addr == "" {
		addr = config.Env("APPLICATION_GRPC_ADDR", rotationAddrs["application"])
	}
	token := config.Env("AID_TOKEN", "")
	if token == "" {
		return nil, nil, errors.New("AID_TOKEN is not set: an auditor token is required")
	}
	conn, err := grpcx.Dial(addr, token)
	if err != nil {
		return nil, nil, err
	}
	return applicationv1.NewApplicationServiceClient(conn), func() { _ = conn.Close() }, nil
}

// writeOut writes b to the file out, or to w when out is "" or "-".
func writeOut(w io.Writer, out string, b []byte) error {
	if out == "" || out == "-" {
		_, err := w.Write(append(b, '\n'))
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o600)
}

// checkpointExport writes the latest checkpoint, as the service read it from
// the stream AID_CHECKPOINTS, to a file the auditor keeps.
func checkpointExport(ctx context.Context, w io.Writer, args []string) error {
	fs := flag.NewFlagSet("checkpoint export", flag.ContinueOnError)
	addr := fs.String("addr", "", "the application service's gRPC address (default: APPLICATION_GRPC_ADDR or 127.0.0.1:9101)")
	out := fs.String("out", "", "file to write (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, done, err := applicationClient(*addr)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.ExportCheckpoint(ctx, &applicationv1.ExportCheckpointRequest{})
	if err != nil {
		return err
	}
	return writeOut(w, *out, resp.GetCheckpointJson())
}

// trailExport writes the leaves [from, to) of the latest checkpoint's tree
// with their entries.
func trailExport(ctx context.Context, w io.Writer, args []string) error {
	fs := flag.NewFlagSet("trail export", flag.ContinueOnError)
	addr := fs.String("addr", "", "the application service's gRPC address")
	from := fs.Uint64("from", 0, "first leaf")
	to := fs.Uint64("to", 0, "end leaf, exclusive (default: the checkpoint's tree size)")
	out := fs.String("out", "", "file to write (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, done, err := applicationClient(*addr)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.ExportTrailLeaves(ctx, &applicationv1.ExportTrailLeavesRequest{Start: *from, End: *to})
	if err != nil {
		return err
	}
	return writeOut(w, *out, resp.GetExportJson())
}

// trailProof prints and checks the inclusion proof of one application's
// entries in the latest checkpoint's tree, from the service.
func trailProof(ctx context.Context, w io.Writer, args []string) error {
	fs := flag.NewFlagSet("trail proof", flag.ContinueOnError)
	addr := fs.String("addr", "", "the application service's gRPC address")
	app := fs.String("application", "", "application ID")
	keys := fs.String("keys", "", "trail verify keys, <id>:<base64 public key>[,...] (default: AID_TRAIL_VERIFY_KEYS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	vk, err := verifyKeys(*keys)
	if err != nil {
		return err
	}
	c, done, err := applicationClient(*addr)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.GetInclusionProof(ctx, &applicationv1.GetInclusionProofRequest{ApplicationId: *app})
	if err != nil {
		return err
	}
	var x anchor.InclusionExport
	if err := json.Unmarshal(resp.GetProofJson(), &x); err != nil {
		return fmt.Errorf("decode proof: %w", err)
	}
	if err := anchor.VerifyInclusionExport(x, vk); err != nil {
		return err
	}
	printProof(w, x)
	return nil
}

func printProof(w io.Writer, x anchor.InclusionExport) {
	fmt.Fprintf(w, "application %s in the tree of checkpoint size %d root %s (key %s, %s)\n",
		x.ApplicationID, x.Checkpoint.TreeSize, x.Checkpoint.Root, x.Checkpoint.KeyID, x.Checkpoint.Time.Format("2006-01-02T15:04:05Z"))
	for _, l := range x.Leaves {
		fmt.Fprintf(w, "  position %d: leaf %d, entry hash %s, leaf hash %s\n", l.Position, l.Index, l.EntryHash, l.LeafHash)
		for i, p := range l.Path {
			fmt.Fprintf(w, "    path[%d] %s\n", i, p)
		}
	}
	fmt.Fprintf(w, "inclusion proof ok: %d entries\n", len(x.Leaves))
}

// verifyKeys reads the verify key set from -keys or AID_TRAIL_VERIFY_KEYS.
func verifyKeys(flagValue string) (anchor.VerifyKeys, error) {
	set := flagValue
	if set == "" {
		set = config.Env("AID_TRAIL_VERIFY_KEYS", "")
	}
	if set == "" {
		return nil, errors.New("no verify key: pass -keys <id>:<base64 public key> or set AID_TRAIL_VERIFY_KEYS (aidctl trail public-key prints the development one)")
	}
	return anchor.ParseVerifyKeys(set)
}

// verifyOffline checks an exported range against its checkpoint, and that
// checkpoint against one the auditor kept, with no service involved: the
// signature with the public key, each entry against its hash and its
// leaf, and the tree root recomputed. With -application it also computes
// and checks the application's inclusion proofs (the export must then
// cover the whole tree).
func verifyOffline(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	leavesFile := fs.String("leaves", "", "range export (aidctl trail export)")
	cpFile := fs.String("checkpoint", "", "checkpoint kept before (aidctl checkpoint export); the range's checkpoint must be it")
	keys := fs.String("keys", "", "trail verify keys, <id>:<base64 public key>[,...] (default: AID_TRAIL_VERIFY_KEYS)")
	app := fs.String("application", "", "print and check the inclusion proof of this application's entries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *leavesFile == "" {
		return errors.New("-leaves is required")
	}
	vk, err := verifyKeys(*keys)
	if err != nil {
		return err
	}
	var x anchor.RangeExport
	if err := readJSON(*leavesFile, &x); err != nil {
		return err
	}
	if *cpFile != "" {
		var kept anchor.Checkpoint
		if err := readJSON(*cpFile, &kept); err != nil {
			return err
		}
		if err := vk.Verify(kept); err != nil {
			return fmt.Errorf("the kept checkpoint: %w", err)
		}
		if kept.TreeSize != x.Checkpoint.TreeSize || kept.Root != x.Checkpoint.Root {
			return fmt.Errorf("%w: the export is of the tree of size %d root %s, the kept checkpoint of size %d root %s",
				anchor.ErrTampered, x.Checkpoint.TreeSize, x.Checkpoint.Root, kept.TreeSize, kept.Root)
		}
	}
	rep, err := anchor.VerifyRange(x, vk)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "checkpoint: size %d root %s, signed %s by key %s: signature ok\n",
		x.Checkpoint.TreeSize, x.Checkpoint.Root, x.Checkpoint.Time.Format("2006-01-02T15:04:05Z"), x.Checkpoint.KeyID)
	fmt.Fprintf(w, "leaves [%d, %d): %d entries rehashed, %d links checked, root recomputed: ok\n", rep.Start, rep.End, rep.Entries, rep.Linked)
	if *app == "" {
		return nil
	}
	if rep.Start != 0 || rep.End != rep.TreeSize {
		return fmt.Errorf("an inclusion proof needs the whole tree: export -from 0 (this export holds [%d, %d) of %d), or use aidctl trail proof", rep.Start, rep.End, rep.TreeSize)
	}
	all := make([]anchor.Hash, len(x.Leaves))
	var proofs []anchor.LeafProof
	for i, l := range x.Leaves {
		if all[i], err = anchor.EntryLeaf(l.EntryHash); err != nil {
			return err
		}
		if l.Entry.ApplicationID == *app {
			proofs = append(proofs, anchor.LeafProof{Index: l.Index, Position: l.Entry.Position, EntryHash: l.EntryHash})
		}
	}
	if len(proofs) == 0 {
		return fmt.Errorf("application %s has no entry in the tree of size %d", *app, rep.TreeSize)
	}
	ix, err := anchor.NewInclusionExport(x.Checkpoint, all, *app, proofs)
	if err != nil {
		return err
	}
	if err := anchor.VerifyInclusionExport(ix, vk); err != nil {
		return err
	}
	printProof(w, ix)
	return nil
}

// publicKey prints the verify key set of AID_TRAIL_SIGNING_KEYS (or the
// development key), to hand to auditors.
func publicKey(w io.Writer) error {
	cfg, err := config.LoadTrailKeys(false)
	if err != nil {
		return err
	}
	keys, err := anchor.ParseSigningKeys(cfg.Signing)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, anchor.VerifyKeysOf(keys).String())
	return err
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file) //nolint:gosec // G304: the auditor names the file
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
