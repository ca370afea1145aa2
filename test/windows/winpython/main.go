// Unpacks the Windows CPython that github.com/kluctl/go-embed-python embeds
// (python-build-standalone, windows-amd64) into a folder, with the module's
// own unpacker, natively on Linux: go run . MODULE_DIR OUT_DIR

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kluctl/go-embed-python/embed_util"
)

func main() {
	src := filepath.Join(os.Args[1], "python", "internal", "data", "windows-amd64")
	e, err := embed_util.NewEmbeddedFilesWithTmpDir(os.DirFS(src), os.Args[2], false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(e.GetExtractedPath())
}
