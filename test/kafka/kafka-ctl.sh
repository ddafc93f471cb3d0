#!/usr/bin/env bash
# kafka-ctl.sh: resolve, start, stop and use a single-node Apache Kafka
# broker (KRaft mode, broker and controller in one process) on 127.0.0.1,
# for fraudstream's tests, benchmarks and demo.
#
#   kafka-ctl.sh fetch                  resolve the jars (pom.xml) into a cache
#   kafka-ctl.sh start DIR              format DIR and start a broker there
#   kafka-ctl.sh stop DIR               stop it (also kills a leftover one)
#   kafka-ctl.sh topic DIR NAME PARTS   create topic NAME with PARTS partitions
#   kafka-ctl.sh lag DIR GROUP          the messages consumer group GROUP has
#                                       not committed, over all its partitions
#                                       ("-" while a partition has no commit)
#
# The broker listens on 127.0.0.1:$FS_KAFKA_PORT (default 39092), its
# controller on $FS_KAFKA_CONTROLLER_PORT (default 39093).  Jars are
# resolved once by Maven; later runs resolve from Maven's local repository
# and download nothing.  The broker runs as the invoking user: callers
# that run as root start it through as_pg_user (test/lib.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../lib.sh"

FS_KAFKA_PORT=${FS_KAFKA_PORT:-39092}
FS_KAFKA_CONTROLLER_PORT=${FS_KAFKA_CONTROLLER_PORT:-39093}
# The resolved jars live outside the checkout, readable by everyone, so
# that the unprivileged account that runs the servers can use them.
lib=${FS_KAFKA_LIB:-/var/tmp/fraudstream-cache/kafka-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")}

fetch() {
    if [ -f "$lib/.complete" ]; then
        return 0
    fi
    rm -rf "$lib"
    # Offline first: after one resolution everything is in the local
    # repository and nothing needs the network.
    if ! mvn -q -B -Dstyle.color=never -o -f "$here/pom.xml" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$lib" >/dev/null 2>&1; then
        mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$lib"
    fi
    chmod -R a+rX "$lib"
    touch "$lib/.complete"
}

# The broker's JVM runs with the options Kafka's own start scripts give it
# (broker-jvm.options: a fixed 1GB heap, G1 aiming at 20 ms pauses); with
# G1's default 200 ms target, young collections under load showed in the
# end-to-end latency.  Kafka's command-line tools (storage format, topics)
# run in a small JVM.
java_run() {
    java -Xms128m -Xmx512m -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$lib/*" "$@"
}

write_config() {
    mkdir -p "$dir/data"
    cat >"$dir/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$FS_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$FS_KAFKA_PORT,CONTROLLER://127.0.0.1:$FS_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$FS_KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
CONF
    cat >"$dir/log4j2.properties" <<CONF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
CONF
}

start() {
    fetch
    stop
    # Empty rather than remove: DIR's parent may belong to another user.
    find "$dir" -mindepth 1 -delete
    write_config
    java_run kafka.tools.StorageTool format --ignore-formatted \
        --cluster-id "$(java_run kafka.tools.StorageTool random-uuid)" \
        --config "$dir/server.properties" >"$dir/format.log" 2>&1
    # setsid: the broker gets a process group of its own, so stop can end
    # it whole and an interrupted caller does not take it down half-way.
    local -a jvm
    mapfile -t jvm <"$here/broker-jvm.options"
    setsid java "${jvm[@]}" \
        "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$lib/*" \
        kafka.Kafka "$dir/server.properties" \
        >"$dir/stdout.log" 2>&1 </dev/null &
    echo $! >"$dir/kafka.pid"
    if ! wait_for_port "$FS_KAFKA_PORT" 90; then
        echo "kafka-ctl: the broker did not start; its log follows" >&2
        tail -n 50 "$dir/stdout.log" "$dir/broker.log" >&2 || true
        exit 1
    fi
    # Listening is not serving: wait until metadata requests succeed.
    local i
    for ((i = 0; i < 120; i++)); do
        if kcat -b "127.0.0.1:$FS_KAFKA_PORT" -L -m 2 >/dev/null 2>&1; then
            echo "kafka-ctl: broker up at 127.0.0.1:$FS_KAFKA_PORT"
            return 0
        fi
        sleep 0.5
    done
    echo "kafka-ctl: the broker does not answer metadata requests" >&2
    exit 1
}

stop() {
    mkdir -p "$dir"
    kill_pidfile "$dir/kafka.pid"
    # A broker left by an interrupted run whose directory was removed.
    pkill -f "kafka.Kafka $dir/server.properties" 2>/dev/null || true
}

topic() {
    java_run org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "127.0.0.1:$FS_KAFKA_PORT" --create --if-not-exists \
        --topic "$1" --partitions "$2" --replication-factor 1 >/dev/null
}

lag() {
    java_run org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "127.0.0.1:$FS_KAFKA_PORT" --describe --group "$1" 2>/dev/null |
        awk '$1 == group { if ($6 == "-") none = 1; else lag += $6; n++ }
             END { print (n == 0 || none) ? "-" : lag }' group="$1"
}

cmd=${1:-}
case "$cmd" in
    fetch) fetch ;;
    start) dir=$2; start ;;
    stop) dir=$2; stop ;;
    topic) dir=$2; topic "$3" "$4" ;;
    lag) dir=$2; lag "$3" ;;
    *) echo "usage: kafka-ctl.sh fetch | start DIR | stop DIR | topic DIR NAME PARTITIONS | lag DIR GROUP" >&2
       exit 2 ;;
esac
