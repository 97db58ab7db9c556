"""The recommend and serve commands: NumPy models, VBPR and new users, catalogue checks, garbage files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from serving_helpers import make_data_folder, write_vbpr_dir

from curatornet.cli import main, selected_model_dir
from curatornet.errors import InputError
from curatornet.serving.data import load_data
from curatornet.serving.models import write_untrained_curatornet


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data_dir = make_data_folder(root)
    data = load_data(data_dir)
    ids = list(data.item_ids)
    write_untrained_curatornet(root / "curatornet", data.embeddings, (48, 32), (64, 32, 32), item_ids=ids)
    write_vbpr_dir(root / "vbpr", data.embeddings, data.n_users)
    return root, data_dir, data


def run(capsys, *args):
    code = main(["recommend", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_curatornet_recommends_in_numpy(world, capsys):
    root, data_dir, data = world
    profile = ",".join(data.item_ids[[1, 2]])
    code, out, err = run(capsys, "--model", root / "curatornet", "--data", data_dir, "--items", profile, "--k", 6)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "rank\titem_id\tartist_id\tscore" and len(lines) == 7
    scores = [float(line.split("\t")[3]) for line in lines[1:]]
    assert scores == sorted(scores, reverse=True)


def test_a_models_folder_stands_for_the_run_selected_on_validation(world, tmp_path, capsys):
    root, data_dir, data = world
    models = tmp_path / "models"
    # Two trained runs of CuratorNet; the selection prefers guidelines, λ 0.01, at seed 1.
    chosen = models / "curatornet/guidelines/l2_0.01/seed_1"
    other = models / "curatornet/random/l2_0.0001/seed_0"
    for run_dir in (chosen, other):
        shutil.copytree(root / "curatornet", run_dir)
    (models / "selection.csv").write_text(
        "model,sampling,l2,seeds,valid_auc,valid_auc_min,valid_auc_max,selected,best_seed\n"
        "curatornet,guidelines,0.001,2,0.69,0.68,0.70,False,0\n"
        "curatornet,guidelines,0.01,2,0.70,0.69,0.71,True,1\n"
        "curatornet,random,0.0001,2,0.66,0.65,0.67,True,0\n"
    )
    assert selected_model_dir(models / "curatornet") == chosen
    assert selected_model_dir(other) == other  # a run directory is taken as it is
    profile = ",".join(data.item_ids[[1, 2]])
    code, out, err = run(capsys, "--model", models / "curatornet", "--data", data_dir, "--items", profile, "--k", 3)
    assert code == 0, err
    assert f"the run selected on validation is {chosen}" in err and len(out.strip().splitlines()) == 4
    with pytest.raises(InputError) as info:  # a model the selection never trained
        selected_model_dir(models / "vbpr")
    assert info.value.field == "model" and info.value.value == "vbpr"
    # training.refit: the selected run's refit is served in its place, unless it refit another λ
    refit = models / "curatornet/guidelines/refit/seed_1"
    shutil.copytree(root / "curatornet", refit)
    meta = json.loads((refit / "model.json").read_text())
    (refit / "model.json").write_text(json.dumps(meta | {"l2": 0.001, "refit": {"ratio": 1.1}}))
    assert selected_model_dir(models / "curatornet") == chosen  # a refit left from another selection
    (refit / "model.json").write_text(json.dumps(meta | {"l2": 0.01, "refit": {"ratio": 1.1}}))
    assert selected_model_dir(models / "curatornet") == refit


def test_vbpr_refuses_a_new_user_unless_folding_in(world, capsys):
    root, data_dir, data = world
    profile = ",".join(data.item_ids[[1, 2]])
    args = ("--model", root / "vbpr", "--data", data_dir, "--items", profile)
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "VBPR has no vector for a new user" in err and "--fold-in" in err
    code, out, err = run(capsys, *args, "--k", 4, "--fold-in")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 5 and not {data.item_ids[1], data.item_ids[2]} & set(out.split())


def test_a_model_of_another_catalogue_is_refused(world, tmp_path, capsys):
    root, data_dir, data = world
    write_untrained_curatornet(tmp_path / "m", data.embeddings, (8,), (8,), item_ids=[f"x{k}" for k in range(400)])
    code, _, err = run(capsys, "--model", tmp_path / "m", "--data", data_dir, "--items", data.item_ids[0])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "items.parquet" in err and "fingerprint" in err and "another catalogue" in err


def garbage_files(folder, dim):
    short = np.empty((2, 2), dtype=object)
    short[0] = ["n1", np.ones(dim, np.float32)]
    short[1] = ["n2", np.ones(dim - 1, np.float32)]
    np.save(folder / "short.npy", short, allow_pickle=True)
    nan = np.empty((1, 2), dtype=object)
    nan[0] = ["n3", np.full(dim, np.nan, np.float32)]
    np.save(folder / "nan.npy", nan, allow_pickle=True)
    np.save(folder / "flat.npy", np.ones(5, np.float32))
    return {"short.npy": "n2", "nan.npy": "n3", "flat.npy": "(N, 2)", "missing.npy": "does not exist"}


def assert_one_clear_line(world, capsys, path, detail):
    root, data_dir, data = world
    args = ("--model", root / "curatornet", "--data", data_dir, "--items", data.item_ids[0])
    code, out, err = run(capsys, *args, "--new-items", path)
    assert code == 2 and out == "", path
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert path.name in err and detail in err, err


def test_garbage_new_items_files_give_one_clear_line(world, tmp_path, capsys):
    for name, detail in garbage_files(tmp_path, world[2].embedding_dim).items():
        assert_one_clear_line(world, capsys, tmp_path / name, detail)


def test_a_text_file_as_new_items_gives_one_clear_line(world, tmp_path, capsys):
    (tmp_path / "text.npy").write_text("item,vector\n1,2\n")
    assert_one_clear_line(world, capsys, tmp_path / "text.npy", "text.npy")


def test_serve_with_a_bad_model_directory_says_so_in_one_line(tmp_path, capsys):
    code = main(["serve", "--model", str(tmp_path / "none"), "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model.json" in err


def test_serve_refuses_faiss_when_it_is_not_installed_or_serves(world, tmp_path):
    """`--index faiss` either builds the index or fails with the install command (never a traceback)."""
    from curatornet.errors import InputError
    from curatornet.serving.recommender import Recommender

    root, data_dir, _ = world
    try:
        import faiss  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match=r"pip install -e \.\[index\]"):
            Recommender(root / "curatornet", data_dir, tmp_path / "c.sqlite", index="faiss")
    else:
        recommender = Recommender(root / "curatornet", data_dir, tmp_path / "c.sqlite", index="faiss")
        assert json.loads(json.dumps(recommender.health()))["index"] == "faiss"
        recommender.close()
