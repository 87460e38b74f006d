#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft broker + controller on 127.0.0.1) for development and tests.
#
# The broker's jars come from Maven Central through deploy/kafka/pom.xml and are cached outside
# the repository, so a machine with Java 17+ and Maven needs no Docker and no tarball download.
#
# Usage: deploy/kafka.sh fetch|start|stop|restart|status|logs|reset
#
# Environment:
#   KAFKA_PORT             broker port (default 9092)
#   KAFKA_CONTROLLER_PORT  controller port (default 9093)
#   CLEARING_HOME          state root (default ~/.local/share/clearing); data, logs, pid under kafka/
#   XDG_CACHE_HOME         jar cache root (default ~/.cache); jars under clearing/kafka-VERSION/libs
#   JAVA_HOME              JDK to run the broker with (default: java on PATH); Java 17 or newer
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx512m)
#   MAVEN_REPO_LOCAL       Maven local repository to resolve into (default: Maven's own)
#   KAFKA_START_TIMEOUT, KAFKA_STOP_TIMEOUT   seconds (defaults 120 and 30)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POM="$ROOT/deploy/kafka/pom.xml"
LOG4J_CONFIG="$ROOT/deploy/kafka/log4j2.properties"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/clearing/kafka-$KAFKA_VERSION"
LIBS="$CACHE_DIR/libs"
STATE="${CLEARING_HOME:-$HOME/.local/share/clearing}/kafka"
DATA="$STATE/data"
LOGS="$STATE/logs"
PIDFILE="$STATE/kafka.pid"
HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

# Serialises fetch/start/stop between concurrent callers (make, pytest, another shell).
take_lock() {
    mkdir -p "$(dirname "$1")"
    exec 9>"$1"
    flock 9
}

find_java() {
    local java major
    if [ -n "${JAVA_HOME:-}" ]; then
        java="$JAVA_HOME/bin/java"
    else
        java=$(command -v java || true)
    fi
    [[ -n "$java" && -x "$java" ]] ||
        die "java not found: install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
    major=$("$java" -XshowSettings:properties -version 2>&1 |
        sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')
    [ "${major:-0}" -ge 17 ] || die "$java is Java ${major:-?}; Kafka $KAFKA_VERSION needs Java 17 or newer (set JAVA_HOME)"
    echo "$java"
}

pom_hash() {
    sha256sum "$POM" | cut -d' ' -f1
}

fetched() {
    [ "$(cat "$LIBS/.pom.sha256" 2>/dev/null)" = "$(pom_hash)" ]
}

cmd_fetch() {
    if fetched; then
        echo "kafka $KAFKA_VERSION: jars cached in $LIBS"
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: apt-get install maven)"
    find_java >/dev/null
    take_lock "$CACHE_DIR.lock"
    if fetched; then
        echo "kafka $KAFKA_VERSION: jars cached in $LIBS"
        return 0
    fi
    echo "kafka $KAFKA_VERSION: resolving jars from Maven Central into $LIBS"
    local tmp
    mkdir -p "$CACHE_DIR"
    tmp=$(mktemp -d "$CACHE_DIR/libs.tmp.XXXXXX")
    if ! mvn -B -Dstyle.color=never -f "$POM" \
        ${MAVEN_REPO_LOCAL:+-Dmaven.repo.local="$MAVEN_REPO_LOCAL"} \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$CACHE_DIR/mvn.log" 2>&1; then
        rm -rf "$tmp"
        tail -n 40 "$CACHE_DIR/mvn.log" >&2
        die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION; full output in $CACHE_DIR/mvn.log"
    fi
    [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"; }
    pom_hash >"$tmp/.pom.sha256"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    echo "kafka $KAFKA_VERSION: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

# The pid in the pid file, printed only while that process is still our broker.
running_pid() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}

# True when something on the broker port answers a Kafka ApiVersions request.
broker_answers() {
    python3 - "$HOST" "$PORT" <<'EOF'
import socket, struct, sys

client = b"kafka.sh"
body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        head = b""
        while len(head) < 8:
            chunk = sock.recv(8 - len(head))
            if not chunk:
                sys.exit(1)
            head += chunk
except OSError:
    sys.exit(1)
sys.exit(0 if struct.unpack(">ii", head)[1] == 7 else 1)
EOF
}

write_config() {
    cat >"$STATE/server.properties" <<EOF
# Written by deploy/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    cp "$LOG4J_CONFIG" "$STATE/log4j2.properties"
}

jvm_opts() {
    echo "-Dkafka.logs.dir=$LOGS -Dlog4j2.configurationFile=$STATE/log4j2.properties" \
        "-Djava.awt.headless=true"
}

format_storage() {
    local java=$1 cluster_id
    [ -f "$DATA/meta.properties" ] && return 0
    if [ ! -s "$STATE/cluster.id" ]; then
        # shellcheck disable=SC2046
        "$java" $(jvm_opts) -cp "$LIBS/*" kafka.tools.StorageTool random-uuid >"$STATE/cluster.id"
    fi
    cluster_id=$(cat "$STATE/cluster.id")
    echo "kafka: formatting $DATA (cluster id $cluster_id)"
    # shellcheck disable=SC2046
    "$java" $(jvm_opts) -cp "$LIBS/*" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$STATE/server.properties" >>"$LOGS/kafka.out" 2>&1 ||
        die "formatting $DATA failed; see $LOGS/kafka.out"
}

cmd_start() {
    local java pid deadline
    if pid=$(running_pid); then
        echo "kafka: already running (pid $pid) on $HOST:$PORT; log: $LOGS/server.log"
        return 0
    fi
    cmd_fetch >/dev/null
    java=$(find_java)
    take_lock "$STATE/.lock"
    if pid=$(running_pid); then
        echo "kafka: already running (pid $pid) on $HOST:$PORT; log: $LOGS/server.log"
        return 0
    fi
    broker_answers && die "port $PORT already answers Kafka requests but not from this broker ($PIDFILE); stop it or set KAFKA_PORT"
    mkdir -p "$DATA" "$LOGS"
    write_config
    format_storage "$java"
    echo "--- start $(date -Is)" >>"$LOGS/kafka.out"
    # setsid: the broker outlives this shell and the caller's Ctrl-C; fd 9 (the lock) stays here.
    # shellcheck disable=SC2086,SC2046
    setsid "$java" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        $(jvm_opts) -cp "$LIBS/*" kafka.Kafka "$STATE/server.properties" \
        </dev/null >>"$LOGS/kafka.out" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"
    deadline=$((SECONDS + START_TIMEOUT))
    until broker_answers; do
        if ! running_pid >/dev/null; then
            rm -f "$PIDFILE"
            tail -n 30 "$LOGS/kafka.out" >&2 || true
            die "the broker exited during start-up; see $LOGS/server.log and $LOGS/kafka.out"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "the broker (pid $pid) did not answer on $HOST:$PORT within ${START_TIMEOUT}s; see $LOGS/server.log"
        fi
        sleep 0.3
    done
    echo "kafka $KAFKA_VERSION: running (pid $pid) on $HOST:$PORT; data: $DATA; log: $LOGS/server.log"
}

cmd_stop() {
    local pid deadline
    take_lock "$STATE/.lock"
    if ! pid=$(running_pid); then
        rm -f "$PIDFILE"
        echo "kafka: not running"
        return 0
    fi
    kill -TERM "$pid"
    deadline=$((SECONDS + STOP_TIMEOUT))
    while running_pid >/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "kafka: pid $pid still running after ${STOP_TIMEOUT}s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.3
    done
    rm -f "$PIDFILE"
    echo "kafka: stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid=$(running_pid) && broker_answers; then
        echo "kafka $KAFKA_VERSION: running (pid $pid) on $HOST:$PORT; data: $DATA; log: $LOGS/server.log"
    elif pid=$(running_pid); then
        echo "kafka: pid $pid alive but $HOST:$PORT does not answer; see $LOGS/server.log"
        return 1
    else
        echo "kafka: not running"
        return 3
    fi
}

cmd_reset() {
    cmd_stop
    rm -rf "$DATA" "$STATE/cluster.id"
    echo "kafka: data removed from $DATA"
}

case "${1:-}" in
fetch) cmd_fetch ;;
start) cmd_start ;;
stop) cmd_stop ;;
restart) cmd_stop && cmd_start ;;
status) cmd_status ;;
logs) echo "$LOGS/server.log" ;;
reset) cmd_reset ;;
*)
    echo "usage: $0 fetch|start|stop|restart|status|logs|reset" >&2
    exit 2
    ;;
esac
