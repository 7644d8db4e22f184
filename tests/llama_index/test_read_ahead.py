"""SimpleDirectoryReader asks the reader for one file at a time; the reader reads the next ones ahead.

The engine is the real tiny one; the replica's ``pages_at_once_max`` counts pages decoded together.
"""

from __future__ import annotations

import os

from llama_index.core import SimpleDirectoryReader
from PIL import Image

from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader
from deepseek_ocr2_loaders.records._read_ahead import ReadAhead


def scans(folder, count):
    folder.mkdir()
    for index in range(count):
        Image.new("RGB", (320 + 10 * index, 240), (255, 250 - 25 * index, 240)).save(folder / f"scan-{index}.png")
    return folder


def documents(docs):
    return [(d.id_, d.text, {k: v for k, v in d.metadata.items() if k not in ("file_path", "file_type")}) for d in docs]


def test_file_by_file_reads_share_engine_batches_and_give_the_documents_of_one_call(tmp_path, tiny_engine):
    folder = scans(tmp_path / "scans", 7)
    _, (replica,) = tiny_engine._page_queue()
    replica.stats["pages_at_once_max"] = 0
    reader = DeepSeekOCR2Reader(engine=tiny_engine, cache=False)
    per_file = SimpleDirectoryReader(str(folder), file_extractor={".png": reader}).load_data()
    assert replica.stats["pages_at_once_max"] > 1  # the files after the second decoded together
    one_call = DeepSeekOCR2Reader(engine=tiny_engine, cache=False).load_data(str(folder))
    assert [d.metadata["file_name"] for d in per_file] == [f"scan-{i}.png" for i in range(7)]
    assert [(i, t) for i, t, _ in documents(per_file)] == [(i, t) for i, t, _ in documents(one_call)]


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path):
    folder = scans(tmp_path / "scans", 5)
    files = sorted(folder.iterdir())
    loads: list[list[str]] = []

    def load(paths):
        loads.append([p.name for p in paths])
        for path in paths:  # one record per file, as a page-mode load of a one-page image gives
            yield type("Record", (), {"metadata": {"source": str(path)}, "text": path.read_bytes()[-8:]})()

    ahead = ReadAhead(load, files=8)
    list(ahead.records(files[0]))
    list(ahead.records(files[1]))  # neighbours: the rest is read ahead
    for _, future in list(ahead._ahead.values()):
        future.exception()  # wait for the read-ahead
    assert sorted(loads) == [["scan-0.png"], ["scan-1.png"], ["scan-2.png", "scan-3.png"], ["scan-4.png"]]
    Image.new("RGB", (50, 50), "red").save(files[3])
    os.utime(files[3], ns=(1, 1))  # a different stamp, whatever the clock's resolution
    list(ahead.records(files[2]))
    (record,) = list(ahead.records(files[3]))
    assert loads[-1] == ["scan-3.png"] and record.text == files[3].read_bytes()[-8:]
    list(ahead.records(files[4]))
    assert loads[-1] == ["scan-3.png"]  # scan-4 came from the read-ahead


def test_reading_ahead_goes_in_quarter_batch_chunks_up_to_two_batches_ahead_of_the_caller(tmp_path):
    """A chunk's records come when its slowest page is done; the chunks after it keep the engine busy."""
    folder = scans(tmp_path / "scans", 30)
    files = sorted(folder.iterdir())
    loads: list[list[str]] = []

    def load(paths):
        loads.append([p.name for p in paths])
        for path in paths:
            yield type("Record", (), {"metadata": {"source": str(path)}, "text": path.name})()

    ahead = ReadAhead(load, files=4)  # chunks of one batch's quarter: 1 file; 8 files ahead at most
    list(ahead.records(files[0]))
    list(ahead.records(files[1]))
    assert sorted(ahead._ahead) == files[2:10]
    for index in range(2, 30):
        (record,) = list(ahead.records(files[index]))
        assert record.text == files[index].name
        assert len(ahead._ahead) <= 8
    assert all(len(chunk) == 1 for chunk in loads)
    assert sorted(name for chunk in loads for name in chunk) == sorted(f.name for f in files)  # each read once
