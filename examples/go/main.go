// SPDX-License-Identifier: Apache-2.0
//
// kinfer-example (Go): produce Confluent-framed Avro text records to kinfer's input topic, read
// kinfer's Confluent-framed Avro results back, and check that every id came back with a label.
// Kafka client: github.com/segmentio/kafka-go; Avro: github.com/linkedin/goavro/v2.
//
// A Confluent-framed record is: magic byte 0, the writer schema id (4 bytes, big-endian), then
// the Avro binary encoding of the record. kinfer reads the writer schema of id N from
// <input.schemas.dir>/N.avsc (or from the Schema Registry) and writes its results with
// output.schema.id. See docs/producers.md.
//
// stdout: one line per id, "id<TAB>label<TAB>score", in the order produced; stderr: a summary.
// Exit status 0 only when every id produced came back with a non-empty label.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/segmentio/kafka-go"
)

type result struct {
	label string
	score float32
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "go example: "+format+"\n", a...)
	os.Exit(1)
}

// readTexts -- up to n texts from path (a line, or the part after the first TAB of a
// label<TAB>text line), repeated from the start when the file has fewer.
func readTexts(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && len(lines) < n {
		l := sc.Text()
		if i := strings.IndexByte(l, '\t'); i >= 0 {
			l = l[i+1:]
		}
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		die("%s: %v", path, err)
	}
	if len(lines) == 0 {
		die("%s: no text", path)
	}
	texts := make([]string, n)
	for i := range texts {
		texts[i] = lines[i%len(lines)]
	}
	return texts
}

func codecFromFile(path string) *goavro.Codec {
	b, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	c, err := goavro.NewCodec(string(b))
	if err != nil {
		die("%s: %v", path, err)
	}
	return c
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap servers, comma-separated")
	inTopic := flag.String("input-topic", "sections.in", "kinfer's input.topic")
	outTopic := flag.String("output-topic", "sections.out", "kinfer's output.topic")
	schemaID := flag.Int("schema-id", 1, "writer schema id framed into each record (kinfer reads <input.schemas.dir>/<id>.avsc)")
	resultSchemaID := flag.Int("result-schema-id", -1, "schema id expected in each result's framing (kinfer's output.schema.id); -1: any")
	textSchema := flag.String("text-schema", "schemas/text_record.avsc", "the writer schema (fields id and text)")
	resultSchema := flag.String("result-schema", "schemas/classification.avsc", "kinfer's result schema")
	textsPath := flag.String("texts", "", "file of texts: one a line, or label<TAB>text (required)")
	n := flag.Int("n", 100, "records to produce")
	idPrefix := flag.String("id-prefix", "go-", "record ids are PREFIX0, PREFIX1, ...")
	timeoutS := flag.Float64("timeout", 120, "seconds to wait for every result")
	flag.Parse()
	if *textsPath == "" || *n < 1 || *n > 1000000 || *timeoutS <= 0 {
		die("--texts FILE is required, --n must be 1..1000000 and --timeout positive")
	}
	timeout := time.Duration(*timeoutS * float64(time.Second))
	writer := codecFromFile(*textSchema)
	reader := codecFromFile(*resultSchema)
	texts := readTexts(*textsPath, *n)
	bs := strings.Split(*brokers, ",")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// produce: key = id, value = 0x00 + schema id + Avro binary
	w := &kafka.Writer{Addr: kafka.TCP(bs...), Topic: *inTopic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond, BatchSize: 500}
	msgs := make([]kafka.Message, 0, *n)
	ids := make([]string, *n)
	for i, text := range texts {
		ids[i] = *idPrefix + strconv.Itoa(i)
		value := make([]byte, 5, 5+len(text)+32)
		binary.BigEndian.PutUint32(value[1:], uint32(*schemaID))
		value, err := writer.BinaryFromNative(value, map[string]interface{}{"id": ids[i], "text": text})
		if err != nil {
			die("encode %s: %v", ids[i], err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(ids[i]), Value: value})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		die("produce to %s: %v", *inTopic, err)
	}
	if err := w.Close(); err != nil {
		die("producer close: %v", err)
	}
	fmt.Fprintf(os.Stderr, "go example: %d records produced to %s\n", *n, *inTopic)

	// read every partition of the result topic from the start (a fresh group each run) until
	// every id has its result; results are at-least-once, so an id may come twice
	want := make(map[string]bool, *n)
	for _, id := range ids {
		want[id] = true
	}
	got := make(map[string]result, *n)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: bs, Topic: *outTopic,
		GroupID:     fmt.Sprintf("kinfer-example-go-%d-%d", os.Getpid(), time.Now().UnixNano()),
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for len(got) < *n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			die("read %s: %v", *outTopic, err)
		}
		v := m.Value
		if len(v) < 5 || v[0] != 0 {
			die("%s[%d]@%d: not Confluent-framed (magic byte %v)", m.Topic, m.Partition, m.Offset, v[:min(len(v), 1)])
		}
		if id := int32(binary.BigEndian.Uint32(v[1:5])); *resultSchemaID >= 0 && int(id) != *resultSchemaID {
			die("%s[%d]@%d: schema id %d, expected %d", m.Topic, m.Partition, m.Offset, id, *resultSchemaID)
		}
		native, rest, err := reader.NativeFromBinary(v[5:])
		if err != nil || len(rest) != 0 {
			die("%s[%d]@%d: not a Classification record (%v, %d bytes left)", m.Topic, m.Partition, m.Offset, err, len(rest))
		}
		rec := native.(map[string]interface{})
		id, _ := rec["id"].(string)
		if !want[id] {
			continue // another producer's record
		}
		label, _ := rec["label"].(string)
		score, _ := rec["score"].(float32)
		got[id] = result{label, score}
	}

	out := bufio.NewWriter(os.Stdout)
	missing, unlabelled := 0, 0
	for _, id := range ids {
		res, ok := got[id]
		switch {
		case !ok:
			missing++
		case res.label == "":
			unlabelled++
		default:
			fmt.Fprintf(out, "%s\t%s\t%.6f\n", id, res.label, res.score)
		}
	}
	out.Flush()
	if missing > 0 || unlabelled > 0 {
		die("%d of %d ids without a result, %d with an empty label (after %g s)", missing, *n, unlabelled, *timeoutS)
	}
	fmt.Fprintf(os.Stderr, "go example: %d records produced, %d results read, every id labelled\n", *n, len(got))
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
