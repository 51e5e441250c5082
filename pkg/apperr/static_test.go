package apperr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/apperr"
)

const (
	module     = "github.com/edubureau/studentaid"
	apperrPath = module + "/pkg/apperr"
)

type listedPackage struct {
	ImportPath string   `json:"ImportPath"`
	Dir        string   `json:"Dir"`
	Export     string   `json:"Export"`
	GoFiles    []string `json:"GoFiles"`
}

// TestReasonsAreCatalogConstants type-checks every package of pkg/ and
// services/ and fails on any value of type apperr.Reason that is not one of
// the catalog's constants: a string literal (also one converted implicitly,
// as in Rule: "some-rule"), a constant whose value the catalog does not
// list, or a reason computed at run time (apperr.Reason(err.Error())). It
// also fails on an errdetails.ErrorInfo built outside pkg/apperr, the one
// place that sets ErrorInfo.reason.
func TestReasonsAreCatalogConstants(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "list", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles", "./pkg/...", "./services/...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	exports := map[string]string{}
	var targets []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if strings.HasPrefix(p.ImportPath, module+"/pkg/") || strings.HasPrefix(p.ImportPath, module+"/services/") {
			targets = append(targets, p)
		}
	}
	if len(targets) < 20 {
		t.Fatalf("found only %d packages under pkg/ and services/", len(targets))
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, errors.New("no export data for " + path)
		}
		return os.Open(f)
	})
	checked := 0
	for _, p := range targets {
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
		conf := types.Config{Importer: imp}
		pkg, err := conf.Check(p.ImportPath, fset, files, info)
		if err != nil {
			t.Fatalf("type-check %s: %v", p.ImportPath, err)
		}
		checked++
		if p.ImportPath == apperrPath {
			checkCatalogConstants(t, pkg)
		}
		checkCodes(t, fset, root, files, info)
		for expr, tv := range info.Types {
			pos := fset.Position(expr.Pos())
			rel, _ := filepath.Rel(root, pos.Filename)
			at := rel + ":" + strconv.Itoa(pos.Line)
			if isNamed(tv.Type, "google.golang.org/genproto/googleapis/rpc/errdetails", "ErrorInfo") && p.ImportPath != apperrPath {
				if _, ok := expr.(*ast.CompositeLit); ok {
					t.Errorf("%s: builds an errdetails.ErrorInfo; return an *apperr.Error with a catalog Rule instead", at)
				}
			}
			if !isNamed(tv.Type, apperrPath, "Reason") || tv.IsType() {
				continue
			}
			inCatalog := filepath.Base(pos.Filename) == "catalog.go" && p.ImportPath == apperrPath
			switch {
			case tv.Value != nil:
				if lit, ok := expr.(*ast.BasicLit); ok && !inCatalog && lit.Value != `""` {
					t.Errorf("%s: reason %s is a string literal; use the catalog's constant (pkg/apperr/catalog.go)", at, lit.Value)
				}
				if _, ok := apperr.Lookup(apperr.Reason(strings.Trim(tv.Value.ExactString(), `"`))); !ok && tv.Value.ExactString() != `""` {
					t.Errorf("%s: reason %s is not in the catalog", at, tv.Value.ExactString())
				}
			case p.ImportPath != apperrPath:
				if call, ok := expr.(*ast.CallExpr); ok && len(call.Args) == 1 && info.Types[call.Fun].IsType() {
					t.Errorf("%s: reason computed at run time; name a catalog constant", at)
				}
			}
		}
	}
	t.Logf("%d packages checked", checked)
}

// checkCodes fails where an error names a catalog reason with another code
// than the catalog's: apperr.Denied (always PermissionDenied) with a reason
// of another code, and an apperr.Error literal or a call given both a
// constant Code and a constant Reason that disagree.
func checkCodes(t *testing.T, fset *token.FileSet, root string, files []*ast.File, info *types.Info) {
	t.Helper()
	constOf := func(e ast.Expr, name string) (string, bool) {
		tv, ok := info.Types[e]
		if !ok || tv.Value == nil || !isNamed(tv.Type, apperrPath, name) {
			return "", false
		}
		return tv.Value.ExactString(), true
	}
	check := func(at ast.Node, args []ast.Expr, implied *apperr.Code) {
		var code, reason string
		var haveCode, haveReason bool
		for _, a := range args {
			if kv, ok := a.(*ast.KeyValueExpr); ok {
				a = kv.Value
			}
			if c, ok := constOf(a, "Code"); ok {
				code, haveCode = c, true
			}
			if r, ok := constOf(a, "Reason"); ok {
				reason, haveReason = strings.Trim(r, `"`), true
			}
		}
		if !haveReason || reason == "" {
			return
		}
		var c apperr.Code
		switch {
		case implied != nil:
			c = *implied
		case haveCode:
			n, err := strconv.Atoi(code)
			if err != nil {
				return
			}
			c = apperr.Code(n)
		default:
			return
		}
		e, ok := apperr.Lookup(apperr.Reason(reason))
		if !ok {
			return // reported as not in the catalog
		}
		got := status.Code(apperr.ToStatus(t.Context(), slog.New(slog.DiscardHandler), "", &apperr.Error{Code: c, Message: "x"}))
		if got != e.GRPC {
			pos := fset.Position(at.Pos())
			rel, _ := filepath.Rel(root, pos.Filename)
			t.Errorf("%s:%d: reason %q returned with code %s; the catalog says %s", rel, pos.Line, reason, got, e.GRPC)
		}
	}
	denied := apperr.PermissionDenied
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				var implied *apperr.Code
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Denied" {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == "apperr" {
						implied = &denied
					}
				}
				check(n, n.Args, implied)
			case *ast.CompositeLit:
				if isNamed(info.Types[n].Type, apperrPath, "Error") {
					check(n, n.Elts, nil)
				}
			}
			return true
		})
	}
}

// checkCatalogConstants fails for a Reason constant of pkg/apperr the
// catalog does not list.
func checkCatalogConstants(t *testing.T, pkg *types.Package) {
	t.Helper()
	n := 0
	for _, name := range pkg.Scope().Names() {
		c, ok := pkg.Scope().Lookup(name).(*types.Const)
		if !ok || !isNamed(c.Type(), apperrPath, "Reason") {
			continue
		}
		n++
		if _, ok := apperr.Lookup(apperr.Reason(strings.Trim(c.Val().ExactString(), `"`))); !ok {
			t.Errorf("constant %s = %s is missing from apperr.Catalog", name, c.Val().ExactString())
		}
	}
	if n != len(apperr.Catalog) {
		t.Errorf("%d Reason constants, %d catalog entries", n, len(apperr.Catalog))
	}
}

func isNamed(typ types.Type, pkgPath, name string) bool {
	if p, ok := typ.(*types.Pointer); ok {
		typ = p.Elem()
	}
	n, ok := typ.(*types.Named)
	return ok && n.Obj().Name() == name && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == pkgPath
}
