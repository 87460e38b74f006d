#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft broker + controller on 127.0.0.1) for development and tests.
#
# The broker's jars come from Maven Central through deploy/kafka/pom.xml and are cached outside
# the repository, so a machine with Java 17+ and Maven needs no Docker and no tarball download.
#
# Secure by default: clients connect with SASL_PLAINTEXT and SCRAM-SHA-512 (no anonymous access),
# ACLs are enforced by StandardAuthorizer and nothing is allowed without an ACL. The super users
# are `broker` (the broker itself, also towards its controller, over SASL/PLAIN on loopback) and
# `admin`. Their passwords are generated on first start into kafka/secrets/ under the state root
# (directory 0700, files 0600) and never printed; the SCRAM credentials are written into the
# metadata log when the storage is formatted. A data directory formatted by an older version of
# this script (PLAINTEXT, no credentials) is removed and formatted again, with a message: it only
# ever holds test and demo topics.
#
# Usage: deploy/kafka.sh fetch|start|stop|restart|status|logs|reset|client-config
#   client-config  prints the path of admin's client properties (librdkafka/kcat `-F` format:
#                  bootstrap.servers, security.protocol, sasl.mechanisms, sasl.username,
#                  sasl.password); clearing.kafka_auth reads the same file
#   reset          removes the broker's data (topics, ACLs, users); the passwords are kept
#
# Environment:
#   KAFKA_PORT             broker port (default 9092)
#   KAFKA_CONTROLLER_PORT  controller port (default 9093)
#   CLEARING_HOME          state root (default ~/.local/share/clearing); data, logs, pid and
#                          secrets under kafka/
#   XDG_CACHE_HOME         jar cache root (default ~/.cache); jars under clearing/kafka-VERSION/libs
#   JAVA_HOME              JDK to run the broker with (default: java on PATH); Java 17 or newer
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx512m)
#   MAVEN_REPO_LOCAL       Maven local repository to resolve into (default: Maven's own)
#   KAFKA_START_TIMEOUT, KAFKA_STOP_TIMEOUT   seconds (defaults 120 and 30)
set -euo pipefail
# Everything it creates (state, data, logs, secrets, pid file, jar cache) is the user's only, from
# the first write: the metadata log holds the SCRAM credentials, the logs topic names.
umask 077

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
SECRETS="$STATE/secrets"
ADMIN_USER=admin
BROKER_USER=broker
SCRAM_MECHANISM=SCRAM-SHA-512
# Written into the data directory once it is formatted with the SCRAM credentials (its second
# line: a digest of the passwords it was formatted with); a data directory without it comes from
# the PLAINTEXT version of this script.
SECURITY_MARKER="$DATA/.clearing-security"
SECURITY_VERSION="sasl-scram-sha-512 v1"
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

# Passwords: 32 random letters and digits, created once (0600 in a 0700 directory), never printed.
# Letters and digits only, so they need no quoting in JAAS, --add-scram or properties files.
ensure_secrets() {
    local user file
    mkdir -p "$SECRETS"
    chmod 700 "$SECRETS"
    for user in "$ADMIN_USER" "$BROKER_USER"; do
        file="$SECRETS/$user.password"
        [ -s "$file" ] && continue
        (
            umask 077
            python3 -c 'import secrets, string; a = string.ascii_letters + string.digits; print("".join(secrets.choice(a) for _ in range(32)))' >"$file.tmp"
            mv "$file.tmp" "$file"
        )
    done
    chmod 600 "$SECRETS"/*.password
}

secret() {
    cat "$SECRETS/$1.password"
}

# admin's client properties, librdkafka's format (kcat -F, clearing.kafka_auth).
write_client_config() {
    (
        umask 077
        cat >"$SECRETS/$ADMIN_USER.properties.tmp" <<EOF
# Written by deploy/kafka.sh: the local broker's admin (a super user). Keep it private.
bootstrap.servers=$HOST:$PORT
security.protocol=SASL_PLAINTEXT
sasl.mechanisms=$SCRAM_MECHANISM
sasl.username=$ADMIN_USER
sasl.password=$(secret "$ADMIN_USER")
EOF
        mv "$SECRETS/$ADMIN_USER.properties.tmp" "$SECRETS/$ADMIN_USER.properties"
    )
}

# True when something on the broker port answers a Kafka ApiVersions request (SASL listeners
# answer it before authentication too, so this also finds a broker that is not ours).
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

# True when the broker accepts admin's SCRAM-SHA-512 login and then answers a request.
# Exit status 2 (and a reason on stderr) when the broker refuses the credentials.
broker_ready() {
    python3 - "$HOST" "$PORT" "$ADMIN_USER" "$SECRETS/$ADMIN_USER.password" "$SCRAM_MECHANISM" <<'EOF'
import base64, hashlib, hmac, os, socket, struct, sys

host, port, user, password_file, mechanism = sys.argv[1:6]
try:
    with open(password_file, encoding="utf-8") as f:
        password = f.read().strip().encode()
except OSError:
    print(f"no password file for {user}: {password_file}", file=sys.stderr)
    sys.exit(2)
digest = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]


def recv(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def call(sock, api_key, version, correlation, payload=b""):
    client = b"kafka.sh"
    body = struct.pack(">hhih", api_key, version, correlation, len(client)) + client + payload
    sock.sendall(struct.pack(">i", len(body)) + body)
    (size,) = struct.unpack(">i", recv(sock, 4))
    data = recv(sock, size)
    if struct.unpack(">i", data[:4])[0] != correlation:
        raise OSError("unexpected correlation id")
    return data[4:]


def authenticate(sock, message, correlation):
    # SaslAuthenticate v1: error_code, error_message (nullable), auth_bytes, session_lifetime_ms
    reply = call(sock, 36, 1, correlation, struct.pack(">i", len(message)) + message)
    (error,) = struct.unpack(">h", reply[:2])
    (length,) = struct.unpack(">h", reply[2:4])
    pos = 4 + max(length, 0)
    if error:
        text = reply[4:pos].decode(errors="replace") if length > 0 else ""
        print(f"the broker refused {user}'s credentials (error {error}: {text})", file=sys.stderr)
        sys.exit(2)
    (size,) = struct.unpack(">i", reply[pos : pos + 4])
    return reply[pos + 4 : pos + 4 + size]


def hmac_(key, msg):
    return hmac.new(key, msg, digest).digest()


try:
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        reply = call(sock, 17, 1, 1, struct.pack(">h", len(mechanism)) + mechanism.encode())
        if struct.unpack(">h", reply[:2])[0] != 0:
            print(f"the broker does not offer {mechanism}", file=sys.stderr)
            sys.exit(2)
        nonce = base64.b64encode(os.urandom(24)).decode()
        bare = f"n={user},r={nonce}"
        server_first = authenticate(sock, f"n,,{bare}".encode(), 2).decode()
        attrs = dict(part.split("=", 1) for part in server_first.split(","))
        if not attrs["r"].startswith(nonce):
            sys.exit(1)
        salted = hashlib.pbkdf2_hmac(digest, password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac_(salted, b"Client Key")
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{bare},{server_first},{without_proof}".encode()
        signature = hmac_(hashlib.new(digest, client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
        server_final = authenticate(sock, final, 3).decode()
        expected = base64.b64encode(hmac_(hmac_(salted, b"Server Key"), auth_message)).decode()
        if server_final != f"v={expected}":
            print("the broker's SCRAM signature does not match", file=sys.stderr)
            sys.exit(2)
        # ApiVersions on the authenticated connection.
        reply = call(sock, 18, 0, 4)
        sys.exit(0 if struct.unpack(">h", reply[:2])[0] == 0 else 1)
except (OSError, KeyError, ValueError, struct.error):
    sys.exit(1)
EOF
}

# True once the metadata log has a snapshot beyond the bootstrap one (offset 0).
#
# Why it matters: a restarting broker replays the metadata log since its latest snapshot as one
# delta. Kafka 4.4's ScramDelta.apply unlinks a mechanism's credential map as soon as a removal
# (RemoveUserScramCredentialRecord) leaves it empty, and keeps adding that delta's later
# credentials to the unlinked map: if the base snapshot holds no credential and the deleted user
# comes first in the delta's HashMap, every credential is gone after the restart and nobody, not
# even admin or the broker, can log in (and later snapshots keep it so). The bootstrap snapshot
# holds none, so deleting a user before the first snapshot breaks the next restart; once a
# snapshot holds admin and broker, a removal cannot empty the map. Hence a snapshot every 10 s,
# and a first start waits for the first one.
metadata_snapshotted() {
    find "$DATA/__cluster_metadata-0" -maxdepth 1 -name '*.checkpoint' \
        ! -name '00000000000000000000-0000000000.checkpoint' 2>/dev/null | grep -q .
}

# True when the data directory was formatted with SCRAM credentials by this script.
secured() {
    [ "$(head -n 1 "$SECURITY_MARKER" 2>/dev/null)" = "$SECURITY_VERSION" ]
}

credentials_digest() {
    cat "$SECRETS/$ADMIN_USER.password" "$SECRETS/$BROKER_USER.password" | sha256sum | cut -d' ' -f1
}

# True when the data directory was formatted with the passwords now in $SECRETS.
credentials_current() {
    [ "$(sed -n 2p "$SECURITY_MARKER" 2>/dev/null)" = "$(credentials_digest)" ]
}

# server.properties holds the broker's password: 0600, rewritten on every start.
write_config() {
    local broker_password
    broker_password=$(secret "$BROKER_USER")
    (
        umask 077
        cat >"$STATE/server.properties.tmp" <<EOF
# Written by deploy/kafka.sh on every start; edit the script, not this file. Keep it private.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=SASL_PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=SASL_PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=$SCRAM_MECHANISM
sasl.mechanism.inter.broker.protocol=$SCRAM_MECHANISM
listener.name.sasl_plaintext.sasl.enabled.mechanisms=$SCRAM_MECHANISM
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$BROKER_USER" password="$broker_password";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$BROKER_USER" password="$broker_password" user_$BROKER_USER="$broker_password";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:$BROKER_USER;User:$ADMIN_USER
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
# See metadata_snapshotted.
metadata.log.max.snapshot.interval.ms=10000
EOF
        mv "$STATE/server.properties.tmp" "$STATE/server.properties"
    )
    cp "$LOG4J_CONFIG" "$STATE/log4j2.properties"
}

jvm_opts() {
    echo "-Dkafka.logs.dir=$LOGS -Dlog4j2.configurationFile=$STATE/log4j2.properties" \
        "-Djava.awt.headless=true"
}

format_storage() {
    local java=$1 cluster_id args user
    if [ -f "$DATA/meta.properties" ]; then
        if secured && credentials_current; then
            return 0
        elif secured; then
            echo "kafka: $DATA was formatted with other passwords than those in $SECRETS;" \
                "removing it (test and demo topics only) and formatting it again" >&2
        else
            echo "kafka: $DATA was formatted without SCRAM credentials (PLAINTEXT, by an older" \
                "deploy/kafka.sh); removing it (test and demo topics only) and formatting it again" >&2
        fi
        rm -rf "$DATA" "$STATE/cluster.id"
        mkdir -p "$DATA"
    fi
    if [ ! -s "$STATE/cluster.id" ]; then
        # shellcheck disable=SC2046
        "$java" $(jvm_opts) -cp "$LIBS/*" kafka.tools.StorageTool random-uuid >"$STATE/cluster.id"
    fi
    cluster_id=$(cat "$STATE/cluster.id")
    echo "kafka: formatting $DATA (cluster id $cluster_id) with $SCRAM_MECHANISM users" \
        "$ADMIN_USER and $BROKER_USER"
    # The passwords go through a 0600 argument file, not the command line (visible in ps).
    args="$SECRETS/format.args"
    (
        umask 077
        {
            echo kafka.tools.StorageTool
            echo format
            echo "--cluster-id=$cluster_id"
            echo "--config=$STATE/server.properties"
            for user in "$ADMIN_USER" "$BROKER_USER"; do
                echo "--add-scram=$SCRAM_MECHANISM=[name=$user,password=$(secret "$user")]"
            done
        } >"$args"
    )
    # Its output lists the credentials' salted keys: kept with the secrets, not in the log.
    # shellcheck disable=SC2046
    if ! (umask 077 && "$java" $(jvm_opts) -cp "$LIBS/*" "@$args" >"$SECRETS/format.out" 2>&1); then
        rm -f "$args"
        grep -v UserScramCredentialRecord "$SECRETS/format.out" | tail -n 30 >&2 || true
        die "formatting $DATA failed; full output in $SECRETS/format.out"
    fi
    rm -f "$args"
    printf '%s\n%s\n' "$SECURITY_VERSION" "$(credentials_digest)" >"$SECURITY_MARKER"
    FORMATTED=yes
}

# The last warnings and errors of the broker's log, for a start that failed.
log_problems() {
    grep -E '^\[[^]]*\] (WARN|ERROR|FATAL)' "$LOGS/server.log" 2>/dev/null | tail -n 15 >&2 || true
}

# Starts the broker on the data directory as it is and waits until it accepts admin and has a
# metadata snapshot. On failure: the broker is stopped, the reason is on stderr, status 1.
launch() {
    local java=$1 pid deadline
    echo "--- start $(date -Is)" >>"$LOGS/kafka.out"
    # setsid: the broker outlives this shell and the caller's Ctrl-C; fd 9 (the lock) stays here.
    # shellcheck disable=SC2086,SC2046
    setsid "$java" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        $(jvm_opts) -cp "$LIBS/*" kafka.Kafka "$STATE/server.properties" \
        </dev/null >>"$LOGS/kafka.out" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"
    deadline=$((SECONDS + START_TIMEOUT))
    until broker_ready 2>"$STATE/probe.err" && metadata_snapshotted; do
        if ! running_pid >/dev/null; then
            rm -f "$PIDFILE"
            tail -n 30 "$LOGS/kafka.out" >&2 || true
            log_problems
            echo "kafka.sh: the broker exited during start-up; see $LOGS/server.log and $LOGS/kafka.out" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            cat "$STATE/probe.err" >&2 || true
            log_problems
            if metadata_snapshotted; then
                echo "kafka.sh: the broker (pid $pid) did not accept $ADMIN_USER on $HOST:$PORT within ${START_TIMEOUT}s; see $LOGS/server.log" >&2
            else
                echo "kafka.sh: the broker (pid $pid) did not accept $ADMIN_USER and write a metadata snapshot within ${START_TIMEOUT}s; see $LOGS/server.log" >&2
            fi
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$PIDFILE"
            return 1
        fi
        sleep 0.5
    done
    rm -f "$STATE/probe.err"
    echo "kafka $KAFKA_VERSION: running (pid $pid) on $HOST:$PORT (SASL_PLAINTEXT, $SCRAM_MECHANISM);" \
        "data: $DATA; log: $LOGS/server.log; client config: $SECRETS/$ADMIN_USER.properties"
}

cmd_start() {
    local java pid
    if pid=$(running_pid); then
        echo "kafka: already running (pid $pid) on $HOST:$PORT; log: $LOGS/server.log"
        warn_if_insecure
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
    # The metadata log holds the SCRAM credentials (salted): nothing under kafka/ is for others.
    chmod 700 "$STATE"
    ensure_secrets
    write_config
    write_client_config
    FORMATTED=no
    format_storage "$java"
    launch "$java" && return 0
    # A data directory left by a broker that was killed (a machine or session stopped under it)
    # can fail to come up again; it only ever holds test and demo topics, so start afresh once.
    [ "$FORMATTED" = no ] || die "the broker did not start on a freshly formatted data directory"
    echo "kafka: the broker did not come up on the data it had in $DATA; removing it" \
        "(test and demo topics only) and formatting it again" >&2
    rm -rf "$DATA" "$STATE/cluster.id"
    mkdir -p "$DATA"
    format_storage "$java"
    launch "$java" || die "the broker did not start on a freshly formatted data directory either"
}

# A broker started by the PLAINTEXT version of this script keeps running as it was.
warn_if_insecure() {
    secured && return 0
    echo "kafka: this broker was started without authentication by an older deploy/kafka.sh;" \
        "run deploy/kafka.sh restart to secure it (its data will be reset)" >&2
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
    if pid=$(running_pid) && secured && broker_ready; then
        echo "kafka $KAFKA_VERSION: running (pid $pid) on $HOST:$PORT (SASL_PLAINTEXT, $SCRAM_MECHANISM);" \
            "data: $DATA; log: $LOGS/server.log"
    elif pid=$(running_pid) && ! secured && broker_answers; then
        echo "kafka $KAFKA_VERSION: running (pid $pid) on $HOST:$PORT WITHOUT authentication" \
            "(started by an older deploy/kafka.sh; deploy/kafka.sh restart secures it)"
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

cmd_client_config() {
    mkdir -p "$STATE"
    take_lock "$STATE/.lock"
    ensure_secrets
    write_client_config
    echo "$SECRETS/$ADMIN_USER.properties"
}

case "${1:-}" in
fetch) cmd_fetch ;;
start) cmd_start ;;
stop) cmd_stop ;;
restart) cmd_stop && cmd_start ;;
status) cmd_status ;;
logs) echo "$LOGS/server.log" ;;
reset) cmd_reset ;;
client-config) cmd_client_config ;;
*)
    echo "usage: $0 fetch|start|stop|restart|status|logs|reset|client-config" >&2
    exit 2
    ;;
esac
