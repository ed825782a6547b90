#!/usr/bin/env bash
# Bakes one image into a Bottlerocket data volume, uploads it as an EBS snapshot, copies it into more regions
# and writes the Karpenter EC2NodeClass block devices that use it, per region. The GitHub Actions workflow and the Argo Workflows
# template beside this file both run it; the test suite runs it too, against local stand-ins.
#
# Environment:
#   IMAGE            what to bake, in skopeo's syntax (docker://registry.example.com/app:v1, oci:DIR:TAG, ...);
#                    a registry is read directly, with the credentials docker login / podman login left
#                    (or REGISTRY_AUTH_FILE)
#   NAME             the name containerd and kubelet know it by (default: a docker:// reference's own name,
#                    a layout's tag)
#   CACHE            a directory keeping fetched blobs between runs (optional)
#   REGION           where the snapshot is made
#   COPY_TO_REGIONS  more regions, space-separated (optional)
#   OUT              working directory (default: out)
#   KILN             the kiln binary (default: kiln on PATH)
# Credentials are the AWS SDKs' (environment, profile, web identity, container, IMDS); AWS_ENDPOINT_URL
# points every call somewhere else.
set -euo pipefail
: "${IMAGE:?set IMAGE, e.g. docker://registry.example.com/app:v1}"
: "${REGION:?set REGION, e.g. us-west-2}"
OUT=${OUT:-out}
KILN=${KILN:-kiln}
mkdir -p "$OUT"
options=()
[ -n "${NAME:-}" ] && options+=(--name "$NAME")
[ -n "${CACHE:-}" ] && options+=(--cache "$CACHE")

# Bake straight from the source (a registry's layers are unpacked as they download), then check every
# written block against the manifest before anything leaves the machine.
"$KILN" bake --source "$IMAGE" "${options[@]}" --layout bottlerocket -o "$OUT/volume"
"$KILN" verify "$OUT/volume/data.img"

# Upload (resumable: run again after a failure), wait for completion, copy into the other regions.
copies=()
for r in ${COPY_TO_REGIONS:-}; do copies+=(--copy-to-region "$r"); done
"$KILN" upload "$OUT/volume" --region "$REGION" "${copies[@]}" --wait --json > "$OUT/upload.json"

# The EC2NodeClass's blockDeviceMappings for each region (paste under spec:), from the snapshot ids the upload
# wrote into the manifest.
for r in "$REGION" ${COPY_TO_REGIONS:-}; do
	"$KILN" emit karpenter --manifest "$OUT/volume/manifest.json" --region "$r" -o "$OUT/ec2nodeclass-$r.yaml"
done
echo "snapshots: $(cat "$OUT/upload.json" | tr -d '\n' | head -c 400)"
