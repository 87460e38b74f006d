#!/bin/bash
# The compose deployment's broker (apache/kafka image): SASL/SCRAM-SHA-512 on every client
# listener, StandardAuthorizer, deny by default. Passwords come from the docker secrets in
# /run/secrets, never from the compose file; they are written only into the 0600 files below
# and into the metadata log (salted) when the storage is formatted on first start.
set -euo pipefail
umask 077

secret() {
    tr -d '\n' <"/run/secrets/$1"
}

CONFIG=/var/lib/kafka/server.properties
DATA=/var/lib/kafka/data
BROKER_PASSWORD=$(secret kafka_broker_password)
cat >"$CONFIG" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
controller.listener.names=CONTROLLER
# The controller only on the container's loopback; clients only with a SCRAM login.
listeners=INTERNAL://:9092,EXTERNAL://:9094,CONTROLLER://localhost:9093
advertised.listeners=INTERNAL://kafka:9092,EXTERNAL://localhost:9094
listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$BROKER_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin
log.dirs=$DATA
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
CONF

if [ ! -f "$DATA/meta.properties" ]; then
    ARGS=/var/lib/kafka/format.args
    {
        echo "format"
        echo "--cluster-id=${CLUSTER_ID:?}"
        echo "--config=$CONFIG"
        for user in broker admin workers; do
            echo "--add-scram=SCRAM-SHA-512=[name=$user,password=$(secret "kafka_${user}_password")]"
        done
    } >"$ARGS"
    # The passwords go through a 0600 argument file, not the command line.
    /opt/kafka/bin/kafka-storage.sh "@$ARGS" >/var/lib/kafka/format.out 2>&1 ||
        { grep -v UserScramCredentialRecord /var/lib/kafka/format.out >&2; exit 1; }
    rm -f "$ARGS"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
