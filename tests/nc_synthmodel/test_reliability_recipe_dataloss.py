"""Data loss = zero: concurrent appends with real processes, SIGKILL mid-append, duplicate IDs, outputs."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from nc_synthmodel.cli import main
from nc_synthmodel.files import check_output, clean_orphans, lock_path, locked
from nc_synthmodel.io import append_recipes, read_recipes, write_recipes


def recipe(rid: str, size_nm: float = 10.0) -> dict:
    return {
        "id": rid,
        "product": {"name": "PbSe", "role": "product"},
        "chemicals": [{"name": "PbO", "amount_mmol": 4.0, "role": "precursor"}, {"name": "Se", "amount_mmol": 6.0, "role": "precursor"}],
        "conditions": {"injection_temp_c": 180.0, "reaction_temp_c": 180.0, "time_min": 20.0},
        "outcome": {"size_nm": size_nm, "shape": "cube"},
    }


def _append_batches(path: str, prefix: str, n_batches: int, per_batch: int) -> None:
    for b in range(n_batches):
        append_recipes([recipe(f"{prefix}-{b}-{i}") for i in range(per_batch)], path)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_two_processes_appending_at_once_lose_nothing(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    write_recipes([recipe("seed")], path)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_batches, args=(str(path), name, 6, 3)) for name in ("a", "b", "c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    ids = [r.id for r in read_recipes(path).recipes]
    expected = {"seed"} | {f"{p}-{b}-{i}" for p in "abc" for b in range(6) for i in range(3)}
    assert len(ids) == len(expected) and set(ids) == expected
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def _append_then_hang(path: str) -> None:
    """Append, but stop for good between writing the temporary file and renaming it."""
    import nc_synthmodel.files as files

    files.os.fsync = lambda fd: time.sleep(600)
    append_recipes([recipe("killed-1"), recipe("killed-2")], path)


def test_sigkill_mid_append_keeps_the_dataset_and_the_next_write_cleans_up(tmp_path):
    path = tmp_path / "data.json"
    write_recipes([recipe("1"), recipe("2")], path)
    before = path.read_bytes()
    worker = multiprocessing.get_context("fork").Process(target=_append_then_hang, args=(str(path),))
    worker.start()
    deadline = time.monotonic() + 30
    while not [p for p in os.listdir(tmp_path) if p.startswith(".data.") and ".tmp" in p]:
        assert time.monotonic() < deadline, "the writer never wrote its temporary file"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    assert worker.exitcode == -signal.SIGKILL
    assert path.read_bytes() == before  # intact
    orphans = [p for p in os.listdir(tmp_path) if ".tmp" in p]
    assert len(orphans) == 1 and str(worker.pid) in orphans[0]
    # the killed writer held the lock: the kernel released it, so the next append goes through
    append_recipes([recipe("3")], path)
    assert [r.id for r in read_recipes(path).recipes] == ["1", "2", "3"]
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]  # orphan removed


def test_orphans_of_live_writers_are_left_alone(tmp_path):
    path = tmp_path / "x.json"
    mine = tmp_path / f".x.{os.getpid()}.abcd1234.tmp.json"
    dead = tmp_path / ".x.999999999.abcd1234.tmp.json"
    other = tmp_path / ".y.999999999.abcd1234.tmp.json"
    old_format = tmp_path / ".x.abcd1234.tmp.json"  # no pid: removed once an hour old
    users = tmp_path / ".x.my-notes.tmp.json"  # not a name our writer makes: never touched
    for p in (mine, dead, other, old_format, users):
        p.write_text("partial")
    hours_ago = time.time() - 7200
    os.utime(old_format, (hours_ago, hours_ago))
    os.utime(users, (hours_ago, hours_ago))
    assert sorted(clean_orphans(path)) == sorted([dead, old_format])
    assert mine.exists() and other.exists() and users.exists()


def test_duplicate_ids_are_refused_unless_asked(tmp_path):
    path = tmp_path / "data.json"
    append_recipes([recipe("1"), recipe("2")], path)
    with pytest.raises(ValueError, match=r"already present: 2; pass duplicates='skip'"):
        append_recipes([recipe("2", 12.0), recipe("3")], path)
    assert [r.id for r in read_recipes(path).recipes] == ["1", "2"]
    append_recipes([recipe("2", 12.0), recipe("3")], path, duplicates="skip")
    loaded = read_recipes(path).recipes
    assert [r.id for r in loaded] == ["1", "2", "3"] and loaded[1].outcome.size_nm == 10.0  # the earlier row is kept
    with pytest.raises(ValueError, match="repeat the ID"):
        append_recipes([recipe("9"), recipe("9")], path)
    with pytest.raises(ValueError, match="duplicates must be"):
        append_recipes([recipe("10")], path, duplicates="replace")


def _hold_lock(path: str, seconds: float) -> None:
    with locked(path):
        time.sleep(seconds)


def test_a_held_lock_is_waited_for_then_named(tmp_path):
    path = tmp_path / "data.json"
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(str(path), 5.0))
    holder.start()
    deadline = time.monotonic() + 10
    while not lock_path(path).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    with pytest.raises(TimeoutError, match="data.json: another process"):
        with locked(path, timeout_s=0.3):
            pass
    holder.join(10)
    with locked(path, timeout_s=1):  # free again
        pass


def test_outputs_never_replace_inputs_or_existing_files(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("x")
    with pytest.raises(ValueError, match="would replace the input"):
        check_output(source, overwrite=True, inputs=[source])
    link = tmp_path / "link.csv"
    link.symlink_to(source)
    with pytest.raises(ValueError, match="would replace the input"):
        check_output(link, overwrite=True, inputs=[source])
    with pytest.raises(ValueError, match="exists; pass --overwrite"):
        check_output(source, overwrite=False)
    assert check_output(tmp_path / "new.csv") == tmp_path / "new.csv"


def test_cv_predictions_refuses_an_existing_file_before_any_work(tmp_path, capsys):
    data = tmp_path / "r.json"
    write_recipes([recipe("1")], data)
    existing = tmp_path / "pred.csv"
    existing.write_text("mine")
    assert main(["cv", str(data), "--model", "RF", "--predictions", str(existing)]) == 2
    err = capsys.readouterr().err
    assert "pred.csv: exists; pass --overwrite" in err and existing.read_text() == "mine"
    assert main(["cv", str(data), "--model", "RF", "--predictions", str(data), "--overwrite"]) == 2
    assert "would replace the input" in capsys.readouterr().err and read_recipes(data).recipes
