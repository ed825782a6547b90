#!/usr/bin/env bash
# Regenerates the drafts of docs/schemas/*.schema.json from real outputs of the built kiln (review the diff).
# upload and verify-snapshot need the AWS stand-in: ExampleTests validates them; draft them from its outputs
# with scripts/lib/schema-sketch.py.
#   scripts/lib/make-schemas.sh [KILN]
set -euo pipefail
cd "$(dirname "$0")/../.."
K=$(realpath "${1:-.build/debug/kiln}")
J=$(mktemp -d)
trap 'rm -rf "$J"' EXIT
export SOURCE_DATE_EPOCH=1700000000
python3 scripts/lib/hostile-layers.py "$J/hostile"
"$K" bake -q --json fixtures/recipe.yaml -o "$J/out" > "$J/bake.json"
"$K" bake --dry-run --json fixtures/recipe.yaml > "$J/dryrun.json"
"$K" verify -q --json oci:fixtures/example-oci:app:v1 > "$J/vs1.json"
"$K" verify -q --json "oci:$J/hostile:refuse-gzip-crc" > "$J/vs2.json" || true
"$K" verify -q --json "oci:$J/hostile:accepted" > "$J/vs3.json" 2>/dev/null
"$K" verify -q --json "$J/out/data.img" > "$J/vv1.json"
cp -r "$J/out" "$J/bad"
printf 'X' | dd of="$J/bad/data.img" bs=1 seek=$((1048576 + 4096 * 40)) conv=notrunc 2>/dev/null
"$K" verify -q --json "$J/bad/data.img" > "$J/vv2.json" || true
"$K" inspect --json oci:fixtures/example-oci:app:v1 > "$J/is1.json"
"$K" inspect --json "oci:$J/hostile:refuse-gzip-crc" > "$J/is2.json" || true
"$K" inspect --json "$J/out/manifest.json" > "$J/im.json"
"$K" inspect --json "$J/out/data.img" > "$J/ii.json"
"$K" plan --json --manifest "$J/out/manifest.json" > "$J/plan.json"
"$K" emit karpenter --manifest "$J/out/manifest.json" --snapshot-id snap-0123456789abcdef0 --json > "$J/emit1.json"
"$K" emit launch-template --manifest "$J/out/manifest.json" --snapshot-id snap-0123456789abcdef0 --rate none --no-encrypted --json > "$J/emit2.json"
"$K" emit karpenter --volume-size 200Gi --snapshot-id snap-0123456789abcdef0 --iops 4000 --throughput 250 --kms-key-id alias/x --json > "$J/emit3.json"
S="python3 scripts/lib/schema-sketch.py"
$S "kiln bake --json" "What a bake wrote: the image and manifest paths, sizes, counts and the wall time of each phase." \
	"$J/bake.json" > docs/schemas/bake.schema.json
$S "kiln bake --dry-run --json" "The recipe as kiln resolved it: every source with its transport and reference, platforms, layout, size and plan values." \
	"$J/dryrun.json" > docs/schemas/bake-dry-run.schema.json
$S "kiln verify SOURCE... --json" "Every image of the sources checked against its digests: per layer what the manifest promises and what one pass over the blob found." \
	"$J/vs1.json" "$J/vs2.json" "$J/vs3.json" > docs/schemas/verify-source.schema.json
$S "kiln verify data.img --json" "A baked disk image checked against its manifest: every block, the LINEAR checksum, and the damaged ranges with the files and layers they belong to." \
	"$J/vv1.json" "$J/vv2.json" > docs/schemas/verify-volume.schema.json
$S "kiln inspect SOURCE --json" "The images of a source: names, platform, manifest, config and layers with sizes, diffIDs and chainIDs." \
	"$J/is1.json" "$J/is2.json" > docs/schemas/inspect-source.schema.json
$S "kiln inspect manifest.json --json" "A snapshot manifest (docs/manifest.schema.json) with its overview." \
	"$J/im.json" > docs/schemas/inspect-manifest.schema.json
$S "kiln inspect data.img --json" "A baked disk image read without mounting: the probe (partition table, filesystem), containerd's records and the manifest beside it." \
	"$J/ii.json" > docs/schemas/inspect-image.schema.json
$S "kiln plan --json" "A cold-start burst plan: volume initialization, FSR, launches, model preloads, the nodes' readiness and the cost." \
	"$J/plan.json" > docs/schemas/plan.schema.json
$S "kiln emit --json" "What kiln emit wrote: the Karpenter or launch-template snippet, and the same block devices in EC2's field names." \
	"$J/emit1.json" "$J/emit2.json" "$J/emit3.json" > docs/schemas/emit.schema.json
