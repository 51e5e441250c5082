// Package seed holds the policy documents the system starts with, as the
// bureau would publish them: the program policy read off the bureau's 2017
// report and the city's school register. The application service publishes
// them as version 1 of each kind when its policy store is empty
// (docs/policy.md).
package seed

import (
	"embed"
	"fmt"
	"sync"

	"github.com/edubureau/studentaid/pkg/policy"
)

//go:embed *.json
var files embed.FS

// Document is one seed file.
type Document struct {
	Kind policy.Kind
	Name string
	Data []byte
}

// Documents returns the seed documents in publication order: every
// programs file, then every schools file.
func Documents() ([]Document, error) {
	var out []Document
	for _, kind := range []policy.Kind{policy.KindPrograms, policy.KindSchools} {
		names, err := files.ReadDir(".")
		if err != nil {
			return nil, err
		}
		for _, e := range names {
			if len(e.Name()) > len(kind) && e.Name()[:len(kind)] == string(kind) {
				data, err := files.ReadFile(e.Name())
				if err != nil {
					return nil, err
				}
				out = append(out, Document{Kind: kind, Name: e.Name(), Data: data})
			}
		}
	}
	return out, nil
}

// Book returns a book of the seed documents published as versions 1, 2, …
// of each kind, for tools and tests that need the policy without a store.
func Book() (*policy.Book, error) {
	docs, err := Documents()
	if err != nil {
		return nil, err
	}
	versions := make([]policy.Version, 0, len(docs))
	next := map[policy.Kind]int64{}
	for _, d := range docs {
		next[d.Kind]++
		versions = append(versions, policy.Version{Kind: d.Kind, Number: next[d.Kind], Document: d.Data,
			SHA256: policy.Digest(d.Data), DraftedBy: "seed", ApprovedBy: "seed"})
	}
	b, err := policy.NewBook(versions)
	if err != nil {
		return nil, fmt.Errorf("seed policy: %w", err)
	}
	return b, nil
}

// Program returns the program with code as the newest seed version defines
// it, for readers of records made before the policy store that name a
// program and nothing else about it.
func Program(code string) (policy.Program, bool) {
	newest.once.Do(func() {
		docs, err := Documents()
		if err != nil {
			return
		}
		for i := len(docs) - 1; i >= 0 && newest.policy == nil; i-- {
			if docs[i].Kind == policy.KindPrograms {
				newest.policy, _ = policy.ParsePolicy(docs[i].Data)
			}
		}
	})
	if newest.policy == nil {
		return policy.Program{}, false
	}
	return newest.policy.Program(code)
}

// newest is the newest seed policy, parsed once.
var newest struct {
	once   sync.Once
	policy *policy.Policy
}
