"""Loader text links only figures that exist: written under ``figures_dir``, or none at all.

``convert()`` links figures by a bare name for its caller to save; the loaders' Documents
would carry those links to files nobody writes.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from PIL import Image
from scripted_paper import paper_engine, write_paper

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader

MODES = ["page", "single", "elements", "chunks"]
LINK = re.compile(r"!\[Figure[^\]]*\]\(([^)]*)\)")


@pytest.mark.parametrize("mode", MODES)
def test_without_figures_dir_no_text_links_a_figure(tmp_path, mode):
    docs = DeepSeekOCR2Loader(write_paper(tmp_path / "paper.pdf"), engine=paper_engine(), mode=mode).load()
    assert not [d.page_content for d in docs if LINK.search(d.page_content)]
    assert any("Figure 1: Ratio against page density." in d.page_content for d in docs)  # the caption stays


@pytest.mark.parametrize("mode", MODES)
def test_with_figures_dir_every_link_names_a_written_crop(tmp_path, mode):
    paper = write_paper(tmp_path / "paper.pdf")
    figures = tmp_path / "figures"
    docs = DeepSeekOCR2Loader(paper, engine=paper_engine(), mode=mode, figures_dir=figures).load()
    links = [link for d in docs for link in LINK.findall(d.page_content)]
    assert len(links) == 1
    path = Path(unquote(urlparse(links[0]).path))
    assert path.parent == figures and path.name.startswith("paper-") and path.name.endswith("page-0003-figure-1.png")
    with Image.open(path) as crop:  # the image block's box, 600 x 380 on the 0-999 grid of a 602 x 792 pt page
        assert abs(crop.width / crop.height - (0.6 * 602) / (0.38 * 792)) < 0.02
    li = DeepSeekOCR2Reader(engine=paper_engine(), mode=mode, figures_dir=str(figures)).load_data(paper)
    assert [d.text for d in li] == [d.page_content for d in docs]
