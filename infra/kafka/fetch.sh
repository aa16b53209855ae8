#!/usr/bin/env bash
# Fetch the pinned Kafka broker's jars from Maven Central into infra/kafka/lib (git-ignored, cached).
# Same as `dualtrack infra fetch`; kept as a script for machines without the Python environment yet.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v java >/dev/null || { echo "java not found: install a Java 17+ JDK (Debian: openjdk-17-jdk-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "mvn not found: install Maven (Debian: maven)" >&2; exit 1; }
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
if [ -f "$here/lib/.complete" ] && [ "$(cat "$here/lib/.complete")" = "$version" ]; then
  echo "kafka $version jars already in $here/lib"; exit 0
fi
rm -rf "$here/lib.tmp"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$here/lib.tmp" -DincludeScope=runtime
rm -rf "$here/lib" && mv "$here/lib.tmp" "$here/lib" && echo "$version" > "$here/lib/.complete"
echo "kafka $version jars in $here/lib"
