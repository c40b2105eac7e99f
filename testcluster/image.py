#!/usr/bin/env python3
"""Packs a root filesystem tarball as a docker archive holding several images.

    image.py ROOTFS.tar OUT.tar IMAGES.json

IMAGES.json maps each image name (``seclab.test/nmap:debian12``) to its config:
``{"Entrypoint": [...], "Cmd": [...], "User": "...", "WorkingDir": "..."}``. Every image
shares the one layer (the root filesystem), so the archive and the runtime's store hold
it once; only the small configs differ. ``ctr images import`` reads the result.
"""

import hashlib
import io
import json
import sys
import tarfile


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def add_bytes(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def main(rootfs, out, images_json):
    with open(images_json) as f:
        images = json.load(f)
    layer = sha256_of(rootfs)
    manifest = []
    with tarfile.open(out, "w") as archive:
        archive.add(rootfs, arcname=f"{layer}/layer.tar")
        for name, settings in sorted(images.items()):
            config = {
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    **settings,
                },
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer}"]},
                "history": [{"created_by": "seclab testcluster: Debian packages"}],
            }
            data = json.dumps(config, sort_keys=True).encode()
            config_name = f"{hashlib.sha256(data).hexdigest()}.json"
            add_bytes(archive, config_name, data)
            manifest.append(
                {"Config": config_name, "RepoTags": [name], "Layers": [f"{layer}/layer.tar"]}
            )
        add_bytes(archive, "manifest.json", json.dumps(manifest).encode())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
