#!/bin/sh
# The service from the shell: one image, a multipart batch, the defended image,
# and an Open Inference Protocol (V2) request. Run from anywhere:
#   S2S_URL=http://localhost:8080 sh examples/curl.sh
# With auth on, also set S2S_API_KEY.
set -eu
URL=${S2S_URL:-http://localhost:8080}
IMAGES=$(dirname "$0")/images
AUTH=${S2S_API_KEY:+-H "authorization: Bearer $S2S_API_KEY"}

echo '# one raw image, top 3 labels'
curl -sS --fail-with-body $AUTH -H 'content-type: image/png' --data-binary @"$IMAGES/shirt.png" "$URL/v1/classify?topK=3"
echo

echo '# two images as multipart parts named image'
curl -sS --fail-with-body $AUTH -F image=@"$IMAGES/sneaker.png" -F image=@"$IMAGES/bag.png" "$URL/v1/classify?topK=1"
echo

echo '# the defended image, as the classifier sees it'
OUT=${TMPDIR:-/tmp}/s2s-seen.png
curl -sS --fail-with-body $AUTH -o "$OUT" -H 'content-type: image/png' --data-binary @"$IMAGES/shirt.png" "$URL/v1/reconstruct"
echo "wrote $OUT ($(wc -c < "$OUT") bytes)"

echo '# V2: model metadata, then a 2x2 UINT8 tensor is the wrong shape: a 400 with {"error": ...}'
curl -sS --fail-with-body $AUTH "$URL/v2/models/fashion-mnist"
echo
curl -sS $AUTH -d '{"inputs":[{"name":"input","datatype":"UINT8","shape":[1,1,2,2],"data":[0,64,128,255]}]}' "$URL/v2/models/fashion-mnist/infer"
echo
