#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make_seeds.py -- (re)write the committed seed corpora under tests/fuzz/corpus/<target>/.
# The seeds are small, hand-made inputs that reach deep into each target: code points that
# expand under NFKD for the featurizer, a valid record of each writer schema for the codec,
# configuration files for the config parser, JSON documents for the JSON reader. The model
# loader's seeds are trained by tests/fuzz/run.sh (they depend on the model format).
import os

here = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(here, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# ---- fuzz_featurize: 4 settings bytes + text -------------------------------------------------
# byte 0: n_buckets = 2^(4 + b % 16); byte 1: word_ngrams = b % 6;
# byte 2: minn = (b & 7) % 7, maxn = minn + (b >> 3) % (7 - minn);
# byte 3: prefix_words = b & 7, lowercase = b >> 3 & 1, capacity kind = b >> 4
def ngram_byte(minn, maxn):
    return minn | ((maxn - minn) << 3)


texts = {
    'fdfa': '\ufdfa' * 20,
    'fdfa_long_token': '\ufdfa' * 400,  # beyond the 1024 bytes a token's char n-grams see
    'ligatures': 'ﬁle ﬂow ﬃ ﬄ ﬅ ﬆ STRAẞE ΐ ǰ ŉ ᾂ ﬀ',
    'squares': '㌀㌁㌂㌃㍱㎢ ⑴⒇⒛ ⅷⅫ ⅞ ﷲ ﷻ',
    'hangul': '한국어 텍스트 분류 가각힣',
    'nospace': '日本語のテキスト分類は空白なしで書かれる中文文本分类',
    'mixed': 'Ünïcode ÉCOLE straße \ufdfa﷽ a\xffb',
}
i = 0
for minn, maxn in [(1, 6), (2, 5), (3, 6), (6, 6), (1, 1), (0, 0)]:
    for name, t in texts.items():
        data = t.encode('utf-8', 'surrogateescape') if '\xff' not in t else t.replace('\xff', '').encode() + b'\xff\xc3'
        hdr = bytes([16, 2 if i % 3 else 0, ngram_byte(minn, maxn) if maxn else 0, (i % 8) | (i % 16) << 4])
        put('fuzz_featurize', f'{name}_{minn}{maxn}', hdr + data)
        i += 1


# ---- fuzz_codec: 1 mode byte + value ------------------------------------------------------------
def zz(v):
    u = (v << 1) ^ (v >> 63)
    u &= (1 << 64) - 1
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7f) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def s(x):
    b = x.encode()
    return zz(len(b)) + b


text_record = s('r-1') + s('a python module for parsing files ﬁ \ufdfa')
v2 = s('src') + zz(1) + s('r-2') + s('en') + s('the text 中文') + zz(2) + s('a') + s('b') + zz(0) + zz(1) + zz(1700000000000)
hostile = (zz(1) + s('h-1')                      # id: string
           + zz(3) + zz(0)                        # nulls: 3
           + zz(-2) + zz(0) + zz(0)               # empties: a block of 2 with its byte size
           + zz(1) + zz(1) + zz(0) + zz(0) + zz(0) + zz(1) + zz(0) + zz(0)  # tree: kids [Node], next Node
           + zz(4) + s('n') + zz(0) + s('i') + zz(1) + zz(7) + s('s') + zz(2) + s('x')
           + s('a') + zz(3) + zz(3) + zz(0) + zz(1) + zz(2) + b'\0' * 8 + zz(0) + zz(0)  # attrs
           + zz(1) + s('a hostile but valid record'))
put('fuzz_codec', 'avro_text_record', b'\x00' + text_record)
put('fuzz_codec', 'avro_v2', b'\x01' + v2)
put('fuzz_codec', 'avro_hostile', b'\x04' + hostile)
put('fuzz_codec', 'avro_hostile_many_nulls', b'\x04' + zz(0) + zz(1 << 40) + zz(0) + zz(0) + zz(0) + zz(0) + zz(1) + s('x'))
put('fuzz_codec', 'confluent_1', b'\x05' + b'\x00\x00\x00\x00\x01' + text_record)
put('fuzz_codec', 'confluent_2', b'\x05' + b'\x00\x00\x00\x00\x02' + v2)
put('fuzz_codec', 'confluent_5', b'\x05' + b'\x00\x00\x00\x00\x05' + hostile)
put('fuzz_codec', 'confluent_bad_id', b'\x05' + b'\x00\x00\x00\x30\x39' + text_record)
put('fuzz_codec', 'json', b'\x06' + '{"id":"j-1","text":"héllo wörld \ufdfa","tags":[1,[2,{"x":null}]],"n":-1.5e3}'.encode())
put('fuzz_codec', 'json_int_id', b'\x06' + b'{"id":42,"text":"x"}')
put('fuzz_codec', 'json_deep', b'\x06' + b'{"text":"x","d":' + b'[' * 40 + b']' * 40 + b'}')
put('fuzz_codec', 'text', b'\x07' + 'plain text ﬁ \ufdfa \xff'.encode('utf-8', 'surrogatepass'))

# ---- fuzz_conf: a config file's bytes -----------------------------------------------------------
put('fuzz_conf', 'serve', b'''# a worker
kafka.bootstrap.servers = 127.0.0.1:9092
input.topic = in,^logs-.*
input.format = avro-confluent
input.schemas.dir = /srv/schemas
input.max.items = 1000
input.max.depth = 8
output.topic = out
output.format = json
dlq.topic = dlq
batch.max.records = 512
worker.threads = 2
kafka.producer.linger.ms = 5
kafka.consumer.fetch.max.bytes = 1048576
kafka.sasl.password = secret
pg.conninfo = postgresql://kinfer:pw@db/kinfer?sslpassword=x
''')
put('fuzz_conf', 'bad_lines', b'novalue\n=x\ninput.max.items=0\nbatch.max.records=99999999999999999999\n  # c\n\n')

# ---- fuzz_json --------------------------------------------------------------------------------
put('fuzz_json', 'mix', '{"a": [1, -2.5e-3, "x\\u00e9\\ud83d\\ude00\\n", {"b": null, "c": true}], "d": {}}'.encode())
put('fuzz_json', 'utf8', b'"caf\xc3\xa9 \xed\xa0\x80 \xf4\x90\x80\x80"')
put('fuzz_json', 'meta', b'{"name": "m", "lineage": {"method": "train", "params": {"epoch": 5, "lr": 0.1}, "parents": []}}')
