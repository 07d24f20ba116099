// SPDX-License-Identifier: Apache-2.0
package kinfer.example;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Future;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * kinfer-example (Java): produce Confluent-framed Avro text records to kinfer's input topic, read
 * kinfer's Confluent-framed Avro results back, and check that every id came back with a label.
 * Kafka client: org.apache.kafka:kafka-clients; Avro: org.apache.avro:avro (Maven Central).
 *
 * <p>A Confluent-framed record is: magic byte 0, the writer schema id (4 bytes, big-endian), then
 * the Avro binary encoding of the record. kinfer reads the writer schema of id N from
 * &lt;input.schemas.dir&gt;/N.avsc (or from the Schema Registry) and writes its results with
 * output.schema.id. See docs/producers.md.
 *
 * <p>stdout: one line per id, "id&lt;TAB&gt;label&lt;TAB&gt;score", in the order produced; stderr:
 * a summary. Exit status 0 only when every id produced came back with a non-empty label.
 */
public final class KinferExample {
    private static void die(String msg) {
        System.err.println("java example: " + msg);
        System.exit(1);
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        a.put("brokers", "127.0.0.1:9092");
        a.put("input-topic", "sections.in");
        a.put("output-topic", "sections.out");
        a.put("schema-id", "1");
        a.put("result-schema-id", "-1");
        a.put("text-schema", "schemas/text_record.avsc");
        a.put("result-schema", "schemas/classification.avsc");
        a.put("texts", "");
        a.put("n", "100");
        a.put("id-prefix", "java-");
        a.put("timeout", "120");
        for (int i = 0; i < argv.length; i += 2) {
            String k = argv[i].startsWith("--") ? argv[i].substring(2) : "";
            if (!a.containsKey(k) || i + 1 >= argv.length) {
                die("usage: --brokers B --input-topic T --output-topic T --schema-id N "
                    + "--result-schema-id N --text-schema F --result-schema F --texts F --n N "
                    + "--id-prefix P --timeout S (unknown or incomplete: " + argv[i] + ")");
            }
            a.put(k, argv[i + 1]);
        }
        int n = Integer.parseInt(a.get("n"));
        if (a.get("texts").isEmpty() || n < 1 || n > 1000000) {
            die("--texts FILE is required and --n must be 1..1000000");
        }
        int schemaId = Integer.parseInt(a.get("schema-id"));
        int resultSchemaId = Integer.parseInt(a.get("result-schema-id"));
        Schema writer = new Schema.Parser().parse(new File(a.get("text-schema")));
        Schema reader = new Schema.Parser().parse(new File(a.get("result-schema")));
        List<String> texts = readTexts(a.get("texts"), n);
        long deadline = System.nanoTime() + (long) (Double.parseDouble(a.get("timeout")) * 1e9);

        // produce: key = id, value = 0x00 + schema id + Avro binary
        List<String> ids = new ArrayList<>(n);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("brokers"));
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "10");
        GenericDatumWriter<GenericRecord> dw = new GenericDatumWriter<>(writer);
        try (KafkaProducer<byte[], byte[]> p =
                 new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<RecordMetadata>> sent = new ArrayList<>(n);
            BinaryEncoder enc = null;
            for (int i = 0; i < n; i++) {
                String id = a.get("id-prefix") + i;
                ids.add(id);
                GenericRecord r = new GenericData.Record(writer);
                r.put("id", id);
                r.put("text", texts.get(i));
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                out.write(0);
                out.write(ByteBuffer.allocate(4).putInt(schemaId).array());
                enc = EncoderFactory.get().binaryEncoder(out, enc);
                dw.write(r, enc);
                enc.flush();
                sent.add(p.send(new ProducerRecord<>(a.get("input-topic"),
                                                     id.getBytes(StandardCharsets.UTF_8), out.toByteArray())));
            }
            p.flush();
            for (Future<RecordMetadata> f : sent) {
                f.get(); // throws when a record was not delivered
            }
        }
        System.err.println("java example: " + n + " records produced to " + a.get("input-topic"));

        // read every partition of the result topic from the start (a fresh group each run) until
        // every id has its result; results are at-least-once, so an id may come twice
        Set<String> want = new HashSet<>(ids);
        Map<String, String> label = new HashMap<>();
        Map<String, Float> score = new HashMap<>();
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("brokers"));
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, "kinfer-example-java-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        GenericDatumReader<GenericRecord> dr = new GenericDatumReader<>(reader);
        try (KafkaConsumer<byte[], byte[]> c =
                 new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(a.get("output-topic")));
            BinaryDecoder dec = null;
            while (label.size() < want.size() && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> m : c.poll(Duration.ofMillis(200))) {
                    byte[] v = m.value() == null ? new byte[0] : m.value();
                    String where = m.topic() + "[" + m.partition() + "]@" + m.offset();
                    if (v.length < 5 || v[0] != 0) {
                        die(where + ": not Confluent-framed");
                    }
                    int sid = ByteBuffer.wrap(v, 1, 4).getInt();
                    if (resultSchemaId >= 0 && sid != resultSchemaId) {
                        die(where + ": schema id " + sid + ", expected " + resultSchemaId);
                    }
                    dec = DecoderFactory.get().binaryDecoder(v, 5, v.length - 5, dec);
                    GenericRecord r = dr.read(null, dec);
                    if (!dec.isEnd()) {
                        die(where + ": bytes left after the Classification record");
                    }
                    String id = r.get("id").toString();
                    if (want.contains(id)) {
                        label.put(id, r.get("label").toString());
                        score.put(id, (Float) r.get("score"));
                    }
                }
            }
        }

        int missing = 0, unlabelled = 0;
        StringBuilder sb = new StringBuilder();
        for (String id : ids) {
            String l = label.get(id);
            if (l == null) {
                missing++;
            } else if (l.isEmpty()) {
                unlabelled++;
            } else {
                sb.append(id).append('\t').append(l).append('\t')
                  .append(String.format("%.6f", score.get(id))).append('\n');
            }
        }
        System.out.print(sb);
        System.out.flush();
        if (missing > 0 || unlabelled > 0) {
            die(missing + " of " + n + " ids without a result, " + unlabelled + " with an empty label (after "
                + a.get("timeout") + " s)");
        }
        System.err.println("java example: " + n + " records produced, " + label.size()
                           + " results read, every id labelled");
    }

    /** Up to n texts from path (a line, or what follows the first TAB), cycled when fewer. */
    private static List<String> readTexts(String path, int n) throws IOException {
        List<String> lines = new ArrayList<>();
        for (String l : Files.readAllLines(Paths.get(path), StandardCharsets.UTF_8)) {
            int t = l.indexOf('\t');
            String text = t >= 0 ? l.substring(t + 1) : l;
            if (!text.isBlank()) {
                lines.add(text);
            }
            if (lines.size() == n) {
                break;
            }
        }
        if (lines.isEmpty()) {
            die(path + ": no text");
        }
        List<String> texts = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            texts.add(lines.get(i % lines.size()));
        }
        return texts;
    }
}
