// A reader of .tar.gz on stdin built on Go's archive/tar: extracts into the folder given as the
// only argument, exactly as Go parses each header (used by tests/tar_readers/__init__.py).
package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	dest := os.Args[1]
	gz, err := gzip.NewReader(os.Stdin)
	if err != nil {
		fail("gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail("tar: %v", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			// archive/tar hands PAX global headers to the caller (its docs: it does not keep
			// their state across files); extractors skip them, as containerd and moby do.
			continue
		}
		clean := filepath.Clean(h.Name)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			fail("unsafe path %q", h.Name)
		}
		target := filepath.Join(dest, clean)
		// Never write through a symlink that an earlier entry created.
		for p := filepath.Dir(target); p != dest && len(p) > len(dest); p = filepath.Dir(p) {
			if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				fail("path %q goes through the symlink %q", h.Name, p)
			}
		}
		os.MkdirAll(filepath.Dir(target), 0o755)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				fail("mkdir %q: %v", h.Name, err)
			}
		case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
			os.Remove(target)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				fail("create %q: %v", h.Name, err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				fail("data of %q: %v", h.Name, err)
			}
			f.Close()
		case tar.TypeSymlink:
			os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				fail("symlink %q: %v", h.Name, err)
			}
		case tar.TypeLink:
			os.Remove(target)
			if err := os.Link(filepath.Join(dest, filepath.Clean(h.Linkname)), target); err != nil {
				fail("link %q: %v", h.Name, err)
			}
		default:
			fail("unsupported type %q for %q", h.Typeflag, h.Name)
		}
	}
	if _, err := io.Copy(io.Discard, gz); err != nil {
		fail("gzip: %v", err)
	}
}
