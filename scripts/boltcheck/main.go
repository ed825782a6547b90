// Command boltcheck is an independent bbolt checker for the KilnBolt tests: it uses
// go.etcd.io/bbolt itself to verify, dump and modify database files.
//
// Build (GOPATH mode, Debian packages golang-go and golang-github-coreos-bbolt-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o boltcheck ./scripts/boltcheck
//
// Usage:
//
//	boltcheck dump FILE          tx.Check(), extra invariants, then the whole tree (format below)
//	boltcheck stats FILE         tx.Check(), then file facts and per-bucket page statistics
//	boltcheck apply FILE SCRIPT  open FILE read-write (creating it if missing) and apply SCRIPT;
//	                             an empty SCRIPT leaves a new file exactly as bbolt initialises it
//	boltcheck encode SCRIPT      print Go encodings of the values listed in SCRIPT
//
// Dump format, depth first in key order; a bucket path is "/" followed by its hex-encoded
// names joined by "/"; "-" stands for an empty value:
//
//	B <path> <sequence>
//	K <path> <hex key> <hex value>
//
// Apply script, one operation per line (paths as above, "/" is the root):
//
//	bucket <path>              create the bucket and its parents if missing
//	put <path> <hexkey> <hexvalue|->
//	del <path> <hexkey>
//	delbucket <path>           delete the bucket at path
//	seq <path> <n>             set the bucket sequence
//	nextseq <path>             call NextSequence once
//	commit                     commit and start a new transaction
//
// Encode script lines: "varint N", "uvarint N", "time UNIXSECONDS NANOS"; each prints
// "<line> => <hex>".
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

func main() {
	if len(os.Args) < 3 {
		fail("usage: boltcheck dump|stats FILE | apply FILE SCRIPT | encode SCRIPT")
	}
	var err error
	switch os.Args[1] {
	case "dump":
		err = dump(os.Args[2])
	case "stats":
		err = stats(os.Args[2])
	case "apply":
		if len(os.Args) < 4 {
			fail("usage: boltcheck apply FILE SCRIPT")
		}
		err = apply(os.Args[2], os.Args[3])
	case "encode":
		err = encode(os.Args[2])
	default:
		fail("unknown mode " + os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "boltcheck:", msg)
	os.Exit(1)
}

func openReadOnly(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
}

// check runs bbolt's own consistency check and reports every problem it finds.
func check(tx *bolt.Tx) error {
	var problems []string
	for err := range tx.Check() {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New("tx.Check: " + strings.Join(problems, "; "))
	}
	return nil
}

func pathString(path [][]byte) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = hex.EncodeToString(p)
	}
	return "/" + strings.Join(parts, "/")
}

func valueString(v []byte) string {
	if len(v) == 0 {
		return "-"
	}
	return hex.EncodeToString(v)
}

func dump(file string) error {
	db, err := openReadOnly(file)
	if err != nil {
		return err
	}
	defer db.Close()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	return db.View(func(tx *bolt.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if b == nil {
				return fmt.Errorf("root key %x is not a bucket", name)
			}
			return dumpBucket(out, [][]byte{name}, b)
		})
	})
}

// dumpBucket prints a bucket and verifies, beyond tx.Check, that keys come out of the cursor
// strictly ascending and that a search through the branch pages finds every key again.
func dumpBucket(out *bufio.Writer, path [][]byte, b *bolt.Bucket) error {
	p := pathString(path)
	fmt.Fprintf(out, "B %s %d\n", p, b.Sequence())
	var prev []byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) == 0 {
			return fmt.Errorf("bucket %s: empty key", p)
		}
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("bucket %s: key %x follows %x (not ascending)", p, k, prev)
		}
		prev = append([]byte(nil), k...)
		if sk, _ := b.Cursor().Seek(k); !bytes.Equal(sk, k) {
			return fmt.Errorf("bucket %s: seek %x found %x", p, k, sk)
		}
		if v == nil {
			child := b.Bucket(k)
			if child == nil {
				return fmt.Errorf("bucket %s: key %x has no value and is not a bucket", p, k)
			}
			if err := dumpBucket(out, append(append([][]byte(nil), path...), prev), child); err != nil {
				return err
			}
			continue
		}
		if got := b.Get(k); !bytes.Equal(got, v) {
			return fmt.Errorf("bucket %s: get %x returned a different value than the cursor", p, k)
		}
		fmt.Fprintf(out, "K %s %s %s\n", p, hex.EncodeToString(k), valueString(v))
	}
	return nil
}

func stats(file string) error {
	db, err := openReadOnly(file)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		fmt.Printf("M pagesize=%d txid=%d size=%d freepages=%d\n",
			db.Info().PageSize, tx.ID(), tx.Size(), db.Stats().FreePageN)
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return statsBucket([][]byte{name}, b)
		})
	})
}

func statsBucket(path [][]byte, b *bolt.Bucket) error {
	s := b.Stats()
	fmt.Printf("S %s depth=%d branch=%d branchoverflow=%d leaf=%d leafoverflow=%d inline=%d buckets=%d keys=%d leafinuse=%d leafalloc=%d\n",
		pathString(path), s.Depth, s.BranchPageN, s.BranchOverflowN, s.LeafPageN, s.LeafOverflowN,
		s.InlineBucketN, s.BucketN, s.KeyN, s.LeafInuse, s.LeafAlloc)
	return b.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		child := b.Bucket(k)
		if child == nil {
			return fmt.Errorf("bucket %s: key %x is neither value nor bucket", pathString(path), k)
		}
		return statsBucket(append(append([][]byte(nil), path...), append([]byte(nil), k...)), child)
	})
}

func parsePath(s string) ([][]byte, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("path %q does not start with /", s)
	}
	if s == "/" {
		return nil, nil
	}
	var path [][]byte
	for _, part := range strings.Split(s[1:], "/") {
		name, err := hex.DecodeString(part)
		if err != nil || len(name) == 0 {
			return nil, fmt.Errorf("bad path component %q", part)
		}
		path = append(path, name)
	}
	return path, nil
}

func parseBytes(s string) ([]byte, error) {
	if s == "-" {
		return []byte{}, nil
	}
	return hex.DecodeString(s)
}

// bucketAt finds (or, with create, makes) the bucket at path.
func bucketAt(tx *bolt.Tx, path [][]byte, create bool) (*bolt.Bucket, error) {
	if len(path) == 0 {
		return nil, errors.New("the root has no bucket handle")
	}
	var b *bolt.Bucket
	for i, name := range path {
		var next *bolt.Bucket
		var err error
		switch {
		case i == 0 && create:
			next, err = tx.CreateBucketIfNotExists(name)
		case i == 0:
			next = tx.Bucket(name)
		case create:
			next, err = b.CreateBucketIfNotExists(name)
		default:
			next = b.Bucket(name)
		}
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %v", pathString(path[:i+1]), err)
		}
		if next == nil {
			return nil, fmt.Errorf("bucket %s does not exist", pathString(path[:i+1]))
		}
		b = next
	}
	return b, nil
}

func apply(file, script string) error {
	text, err := os.ReadFile(script)
	if err != nil {
		return err
	}
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	// The transaction starts with the first operation, so an empty script leaves exactly
	// the file bbolt's own initialisation writes.
	var tx *bolt.Tx
	for n, line := range strings.Split(string(text), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if tx == nil {
			if tx, err = db.Begin(true); err != nil {
				return err
			}
		}
		if err := applyLine(db, &tx, fields); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("script line %d (%s): %v", n+1, line, err)
		}
	}
	if tx == nil {
		return nil
	}
	return tx.Commit()
}

func applyLine(db *bolt.DB, tx **bolt.Tx, f []string) error {
	need := map[string]int{"bucket": 2, "put": 4, "del": 3, "delbucket": 2, "seq": 3, "nextseq": 2, "commit": 1}
	if n, ok := need[f[0]]; !ok || len(f) != n {
		return errors.New("unknown operation or wrong number of fields")
	}
	if f[0] == "commit" {
		if err := (*tx).Commit(); err != nil {
			return err
		}
		next, err := db.Begin(true)
		*tx = next
		return err
	}
	path, err := parsePath(f[1])
	if err != nil {
		return err
	}
	switch f[0] {
	case "bucket":
		_, err = bucketAt(*tx, path, true)
		return err
	case "delbucket":
		if len(path) == 0 {
			return errors.New("cannot delete the root")
		}
		if len(path) == 1 {
			return (*tx).DeleteBucket(path[0])
		}
		parent, err := bucketAt(*tx, path[:len(path)-1], false)
		if err != nil {
			return err
		}
		return parent.DeleteBucket(path[len(path)-1])
	}
	b, err := bucketAt(*tx, path, false)
	if err != nil {
		return err
	}
	switch f[0] {
	case "put":
		k, err := parseBytes(f[2])
		if err != nil {
			return err
		}
		v, err := parseBytes(f[3])
		if err != nil {
			return err
		}
		return b.Put(k, v)
	case "del":
		k, err := parseBytes(f[2])
		if err != nil {
			return err
		}
		return b.Delete(k)
	case "seq":
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return err
		}
		return b.SetSequence(n)
	case "nextseq":
		_, err := b.NextSequence()
		return err
	}
	return nil
}

func encode(script string) error {
	text, err := os.ReadFile(script)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(text), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var out []byte
		switch {
		case f[0] == "varint" && len(f) == 2:
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return err
			}
			buf := make([]byte, binary.MaxVarintLen64)
			out = buf[:binary.PutVarint(buf, n)]
		case f[0] == "uvarint" && len(f) == 2:
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return err
			}
			buf := make([]byte, binary.MaxVarintLen64)
			out = buf[:binary.PutUvarint(buf, n)]
		case f[0] == "time" && len(f) == 3:
			sec, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return err
			}
			nsec, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return err
			}
			out, err = time.Unix(sec, nsec).UTC().MarshalBinary()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("bad encode line %q", line)
		}
		fmt.Printf("%s => %s\n", strings.Join(f, " "), hex.EncodeToString(out))
	}
	return nil
}
