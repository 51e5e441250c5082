// Package sheet reads the rows of an uploaded spreadsheet: XLSX (its first
// sheet) or CSV in UTF-8 or GB18030, which is what school offices and
// Chinese government systems export.
package sheet

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/edubureau/studentaid/pkg/apperr"
)

// Rows yields a file's records one at a time with their 1-based line
// (the spreadsheet's row number for XLSX).
type Rows interface {
	// Read returns the next record, or io.EOF at the end. A *LineError is a
	// row that cannot be read: it is listed and reading goes on.
	Read() (record []string, line int64, err error)
}

// LineError is a row a reader cannot read.
type LineError struct {
	Line   int64
	Reason string
}

func (b *LineError) Error() string { return fmt.Sprintf("line %d: %s", b.Line, b.Reason) }

// zipMagic starts every XLSX file (a ZIP archive).
var zipMagic = []byte("PK\x03\x04")

// Open reads in as XLSX when it is a ZIP archive (its first sheet), and
// as CSV otherwise (UTF-8 or GB18030, see Decode). The closer removes the
// workbook's temporary files.
func Open(in io.Reader, encoding string) (Rows, func(), error) {
	br := bufio.NewReaderSize(in, 64<<10)
	head, err := br.Peek(len(zipMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("read import: %w", err)
	}
	if !bytes.Equal(head, zipMagic) {
		text, err := Decode(br, encoding)
		if err != nil {
			return nil, nil, err
		}
		r := csv.NewReader(text)
		r.FieldsPerRecord, r.ReuseRecord = -1, true
		return &csvRows{r: r}, func() {}, nil
	}
	// excelize reads the archive whole (the compressed file) and streams
	// the sheet's rows; large sheets are unpacked to temporary files.
	f, err := excelize.OpenReader(br)
	if err != nil {
		var v apperr.Violations
		v.Addf("content", "is neither CSV nor a readable XLSX workbook: %v", err)
		return nil, nil, v.Err()
	}
	closeF := func() { _ = f.Close() }
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		closeF()
		var v apperr.Violations
		v.Addf("content", "the workbook has no sheet")
		return nil, nil, v.Err()
	}
	rows, err := f.Rows(sheets[0])
	if err != nil {
		closeF()
		return nil, nil, fmt.Errorf("read sheet %q: %w", sheets[0], err)
	}
	return &xlsxRows{rows: rows}, func() { _ = rows.Close(); closeF() }, nil
}

// csvRows reads CSV records.
type csvRows struct{ r *csv.Reader }

func (c *csvRows) Read() ([]string, int64, error) {
	rec, err := c.r.Read()
	if err != nil {
		if pe, ok := errors.AsType[*csv.ParseError](err); ok {
			return nil, int64(pe.Line), &LineError{Line: int64(pe.Line), Reason: pe.Err.Error()}
		}
		return nil, 0, err
	}
	line, _ := c.r.FieldPos(0)
	return rec, int64(line), nil
}

// xlsxRows reads the rows of one sheet; a row missing from the sheet comes
// back empty, so the count is the row number.
type xlsxRows struct {
	rows *excelize.Rows
	line int64
}

func (x *xlsxRows) Read() ([]string, int64, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, x.line, fmt.Errorf("read sheet: %w", err)
		}
		return nil, x.line, io.EOF
	}
	x.line++
	rec, err := x.rows.Columns()
	if err != nil {
		return nil, x.line, &LineError{Line: x.line, Reason: err.Error()}
	}
	if len(rec) == 0 {
		rec = []string{""}
	}
	return rec, x.line, nil
}

// Decode returns in as UTF-8 text: GB18030 when asked, or when asked to
// detect and the first 64 KiB are not valid UTF-8. A UTF-8 byte order mark
// is dropped.
func Decode(in io.Reader, encoding string) (io.Reader, error) {
	br := bufio.NewReaderSize(in, 64<<10)
	head, err := br.Peek(64 << 10)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("read import: %w", err)
	}
	gb := false
	switch strings.ToLower(encoding) {
	case "gb18030", "gbk":
		gb = true
	case "":
		for cut := 0; cut < utf8.UTFMax && len(head) > cut; cut++ {
			if utf8.Valid(head[:len(head)-cut]) {
				break
			}
			if cut == utf8.UTFMax-1 {
				gb = true
			}
		}
	}
	if gb {
		return simplifiedchinese.GB18030.NewDecoder().Reader(br), nil
	}
	if len(head) >= 3 && string(head[:3]) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	return br, nil
}
