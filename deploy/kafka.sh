#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kafka.sh -- a real Apache Kafka (KRaft, no ZooKeeper) on loopback, for tests, benchmarks and
# anyone who wants the real thing instead of `kinfer dev-broker` (librdkafka's mock cluster).
#
#   deploy/kafka.sh [--nodes N] [--topic NAME:PARTITIONS]... [--dir DIR]
#       fetch Kafka into the cache if needed, format a throwaway log dir, start N nodes (each a
#       combined broker + controller), create the topics, print the bootstrap list as the first
#       line on stdout (as `kinfer dev-broker` does), and serve until SIGTERM or SIGINT; then
#       stop every node (SIGTERM, bounded, then SIGKILL) and remove the log dir (a --dir given
#       by the caller is kept).
#   deploy/kafka.sh fetch                 only fill the cache (mvn, Maven Central)
#   deploy/kafka.sh node DIR I kill|stop|start|wait
#       for fault tests, on a running cluster's DIR: kill -9 node I, stop it (SIGTERM), start
#       it again from its own properties (in the background), or wait (at most 180 s) until a
#       started node accepts connections on its client port (it fails when the node died);
#       DIR/nodeI/pid holds its pid. Start every node of a stopped cluster before waiting for
#       one: a node opens its client port only once a quorum of controllers is up.
#   deploy/kafka.sh leader DIR TOPIC PARTITION   the node id leading that partition
#
# 1 node by default: replication factor 1. With --nodes 3 (at most 5): replication factor 3,
# min.insync.replicas 2, so one node can die without losing a committed record or stopping
# acks=all producers. Ports are chosen free at start. Each node's JVM gets a 512 MiB heap
# (sized for a 2-core, 24 GiB machine shared with the workers; KINFER_KAFKA_HEAP overrides).
# Records up to 4 MiB are accepted (message.max.bytes; Kafka's default is 1 MiB), so that tests
# can put records larger than kinfer's input.max.bytes into a topic, as the dev broker allows.
#
# Cache: ${KINFER_KAFKA_CACHE:-${XDG_CACHE_HOME:-~/.cache}/kinfer/kafka-VERSION}/libs, filled
# once with `mvn dependency:copy-dependencies` of org.apache.kafka:kafka_2.13 (about 45 MB) and
# reused by every later run. Needs java (17+) and mvn (deploy/install-test-deps.sh); topic
# creation needs Debian's python3-confluent-kafka (install-deps.sh).
set -euo pipefail

KAFKA_VERSION=${KINFER_KAFKA_VERSION:-4.1.0}
CACHE=${KINFER_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kinfer/kafka-$KAFKA_VERSION}
LIBS=$CACHE/libs
HEAP=${KINFER_KAFKA_HEAP:-512m}
PY=/usr/bin/python3
ME=$(readlink -f "$0")

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
  [ -e "$LIBS/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn not found (deploy/install-test-deps.sh installs it)"
  command -v java >/dev/null || die "java not found (deploy/install-test-deps.sh installs it)"
  mkdir -p "$CACHE"
  # one fetch at a time: tests run in parallel and may all find an empty cache
  exec 9>"$CACHE/.lock"
  flock 9
  if [ ! -e "$LIBS/.complete" ]; then
    echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION into $CACHE (once)" >&2
    cat >"$CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kinfer</groupId><artifactId>kafka-fetch</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
    rm -rf "$LIBS.tmp"
    if ! mvn -q -B -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$LIBS.tmp" >"$CACHE/mvn.log" 2>&1; then
      tail -n 20 "$CACHE/mvn.log" >&2
      die "mvn could not fetch Kafka (log: $CACHE/mvn.log)"
    fi
    rm -rf "$LIBS"
    mv "$LIBS.tmp" "$LIBS"
    touch "$LIBS/.complete"
  fi
  flock -u 9
}

java_cmd() { # java_cmd CLASS ARGS... (exec'd by the caller when it must be the pid)
  local cls=$1; shift
  java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp "$LIBS/*" "$cls" "$@"
}

# node_start DIR I -- start node I in the background from DIR/nodeI/server.properties
node_start() {
  local dir=$1 i=$2 nd=$1/node$2
  [ -f "$nd/server.properties" ] || die "no node $i in $dir"
  # its own session, so that a signal to the test's process group does not reach it
  setsid bash -c 'echo $$ >"$1/pid"; exec "$2" java-node "$1"' _ "$nd" "$ME" >>"$nd/log" 2>&1 </dev/null &
  local t
  for t in $(seq 600); do [ -s "$nd/pid" ] && break; sleep 0.1; done
}

node_alive() { local p; p=$(cat "$1/node$2/pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

# node_stop DIR I SIGNAL [timeout s] -- signal node I and wait for it to be gone
node_stop() {
  local dir=$1 i=$2 sig=$3 limit=${4:-30} p start=$SECONDS
  p=$(cat "$dir/node$i/pid" 2>/dev/null) || return 0
  kill -"$sig" "$p" 2>/dev/null || { rm -f "$dir/node$i/pid"; return 0; }
  while kill -0 "$p" 2>/dev/null; do
    if [ $((SECONDS - start)) -ge "$limit" ]; then kill -9 "$p" 2>/dev/null; fi
    sleep 0.1
  done
  rm -f "$dir/node$i/pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# node_wait DIR I -- wait until node I listens on its client port (180 s at most)
node_wait() {
  local nd=$1/node$2 port start=$SECONDS
  port=$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$nd/server.properties")
  [ -n "$port" ] || die "node $2: no client port in $nd/server.properties"
  until port_open "$port"; do
    node_alive "$1" "$2" || die "node $2 died while starting (see $nd/log)"
    [ $((SECONDS - start)) -lt 180 ] || die "node $2 does not listen on $port after 180 s (see $nd/log)"
    sleep 0.2
  done
}

free_ports() { # free_ports N -- N distinct free loopback ports, one a line
  $PY - "$1" <<'EOF'
import socket, sys
ss = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ss.append(s)
for s in ss: print(s.getsockname()[1])
EOF
}

serve() {
  local nodes=1 dir="" keep=0 topics=()
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) nodes=$2; shift 2 ;;
      --topic) topics+=("$2"); shift 2 ;;
      --dir) dir=$2; keep=1; shift 2 ;;
      -h|--help) sed -n '3,30p' "$ME" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown argument $1 (--help)" ;;
    esac
  done
  [[ $nodes =~ ^[1-5]$ ]] || die "--nodes must be 1..5"
  fetch
  if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/kinfer-kafka.XXXXXX); else mkdir -p "$dir"; fi
  dir=$(readlink -f "$dir")

  local rf=$nodes minisr=1 i
  [ "$nodes" -ge 3 ] && rf=3 && minisr=2
  [ "$nodes" -eq 2 ] && rf=2
  local ports; mapfile -t ports < <(free_ports $((2 * nodes)))
  local voters="" bootstrap=""
  for ((i = 1; i <= nodes; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:${ports[2 * i - 1]}"
    bootstrap+="${bootstrap:+,}127.0.0.1:${ports[2 * i - 2]}"
  done
  # a cluster id is 16 random bytes, base64url without padding; one that starts with '-'
  # (1 in 64) would be read by StorageTool's argument parser as an option: draw again
  local cid
  cid=-
  while [ "${cid:0:1}" = - ]; do cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done

  stopping=0
  stop_all() {
    [ "$stopping" -eq 1 ] && return
    stopping=1
    local j
    for ((j = 1; j <= nodes; j++)); do
      local p; p=$(cat "$dir/node$j/pid" 2>/dev/null) && kill -TERM "$p" 2>/dev/null
    done
    for ((j = 1; j <= nodes; j++)); do node_stop "$dir" "$j" TERM 20; done
    if [ "$keep" -eq 0 ]; then rm -rf "$dir"; fi
  }
  trap 'stop_all; exit 0' TERM INT
  trap 'stop_all' EXIT

  local fmt_pids=()
  for ((i = 1; i <= nodes; i++)); do
    local nd=$dir/node$i
    mkdir -p "$nd/data"
    cat >"$nd/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${ports[2 * i - 2]},CONTROLLER://127.0.0.1:${ports[2 * i - 1]}
advertised.listeners=PLAINTEXT://127.0.0.1:${ports[2 * i - 2]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$nd/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$minisr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$minisr
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$minisr
group.initial.rebalance.delay.ms=0
unclean.leader.election.enable=false
auto.create.topics.enable=true
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
replica.lag.time.max.ms=10000
message.max.bytes=4194304
replica.fetch.max.bytes=4194304
EOF
    echo "$cid" >"$nd/cluster.id"
    java_cmd kafka.tools.StorageTool format --ignore-formatted --cluster-id="$cid" \
      -c "$nd/server.properties" >"$nd/format.log" 2>&1 &
    fmt_pids+=($!)
  done
  # each format's own exit status (a bare `wait` returns 0 whatever its children did)
  local fmt_failed=0 p
  for p in "${fmt_pids[@]}"; do wait "$p" || fmt_failed=1; done
  [ "$fmt_failed" -eq 0 ] || { cat "$dir"/node*/format.log >&2; die "formatting the log dirs failed"; }
  for ((i = 1; i <= nodes; i++)); do node_start "$dir" "$i"; done
  echo "$bootstrap" >"$dir/bootstrap"

  # ready: every node serves its broker port, the cluster shows every broker, topics created
  local t0=$SECONDS
  for ((i = 1; i <= nodes; i++)); do
    until port_open "${ports[2 * i - 2]}"; do
      node_alive "$dir" "$i" || { tail -n 30 "$dir/node$i/log" >&2; die "node $i exited at start"; }
      [ $((SECONDS - t0)) -lt 180 ] || die "node $i did not open its port in 180 s"
      sleep 0.2
    done
  done
  if ! $PY - "$bootstrap" "$nodes" "$rf" "${topics[@]}" <<'EOF' >&2
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka import KafkaException
bs, nodes, rf, specs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
a = AdminClient({"bootstrap.servers": bs})
end = time.time() + 180
while True:
    try:
        md = a.list_topics(timeout=5)
        if len(md.brokers) >= nodes:
            break
    except KafkaException:
        pass
    if time.time() > end:
        sys.exit("kafka.sh: the cluster did not show %d brokers in 180 s" % nodes)
    time.sleep(0.2)
new = []
for s in specs:
    name, _, p = s.partition(":")
    new.append(NewTopic(name, int(p or 1), rf))
if new:
    for name, f in a.create_topics(new, operation_timeout=60).items():
        f.result()
    # every partition has a leader before the caller is told the cluster is up
    while True:
        md = a.list_topics(timeout=5)
        if all(n.topic in md.topics and not md.topics[n.topic].error and
               len(md.topics[n.topic].partitions) == n.num_partitions and
               all(p.leader >= 0 for p in md.topics[n.topic].partitions.values()) for n in new):
            break
        if time.time() > end:
            sys.exit("kafka.sh: topics without a leader after 180 s")
        time.sleep(0.2)
EOF
  then
    die "the cluster did not come up (node logs in $dir/node*/log)"
  fi
  echo "$bootstrap"
  echo "kafka.sh: Apache Kafka $KAFKA_VERSION, $nodes node(s) in $dir, up in $((SECONDS - t0)) s" >&2
  # serve until a signal, or until the process that started us is gone (a test killed by its
  # timeout must not leave JVMs behind); a node killed by a fault test is not our end
  local parent=$PPID
  while kill -0 "$parent" 2>/dev/null; do sleep 1 & wait $! || true; done
  exit 0
}

case ${1:-} in
  fetch) fetch ;;
  java-node) # internal: the JVM of one node (node_start runs it in its own session)
    fetch
    exec java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
      -Djava.awt.headless=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -Dorg.slf4j.simpleLogger.showDateTime=true -cp "$LIBS/*" kafka.Kafka "$2/server.properties" ;;
  node)
    [ $# -eq 4 ] || die "usage: kafka.sh node DIR I kill|stop|start|wait"
    case $4 in
      kill) node_stop "$2" "$3" KILL ;;
      stop) node_stop "$2" "$3" TERM 30 ;;
      start) node_alive "$2" "$3" && die "node $3 is running"; node_start "$2" "$3" ;;
      wait) node_wait "$2" "$3" ;;
      *) die "node: kill, stop, start or wait" ;;
    esac ;;
  leader)
    [ $# -eq 4 ] || die "usage: kafka.sh leader DIR TOPIC PARTITION"
    $PY - "$(cat "$2/bootstrap")" "$3" "$4" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1]})
md = a.list_topics(sys.argv[2], timeout=10)
print(md.topics[sys.argv[2]].partitions[int(sys.argv[3])].leader)
EOF
    ;;
  *) serve "$@" ;;
esac
