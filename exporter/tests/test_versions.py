"""--version N writes a numbered version folder (models/NAME/N), the layout the server's version policy reads."""

from __future__ import annotations

import json

from conftest import no_leftovers


def test_version_folders(cli, checkpoints, work):
    out = work / "versioned"
    for version in (1, 2):
        res = cli("export", str(checkpoints["bert"]), "--task", "embedding", "--name", "emb", "--out", str(out),
                  "--version", str(version))
        assert res.returncode == 0, res
        assert f"emb/{version}" in res.stdout, res
        manifest = json.loads((out / "emb" / str(version) / "atenspace.json").read_text())
        assert manifest["name"] == "emb"
    assert sorted(p.name for p in (out / "emb").iterdir()) == ["1", "2"]
    assert no_leftovers(out / "emb") == []

    again = cli("export", str(checkpoints["bert"]), "--task", "embedding", "--name", "emb", "--out", str(out),
                "--version", "2")
    assert again.returncode != 0 and "already exists" in again.stderr, again


def test_version_beside_a_flat_export_is_refused(cli, exported, models_dir, checkpoints):
    flat = next(iter(exported.values()))[0]
    res = cli("export", str(checkpoints["bert"]), "--task", "embedding", "--name", flat.name, "--out",
              str(models_dir), "--version", "2")
    assert res.returncode != 0, res
    assert "holds an unversioned export" in res.stderr, res
    assert not (flat / "2").exists()


def test_version_must_be_positive(cli, checkpoints, work):
    res = cli("export", str(checkpoints["bert"]), "--task", "embedding", "--name", "emb0", "--out",
              str(work / "v0"), "--version", "0")
    assert res.returncode != 0, res
