"""The report's sample explorer in a real browser (headless Chromium from the OS packages, driven by Selenium).

A small avmnist run folder (real FSDD audio and MNIST digits, debiased; its test split
valued, and its training set at two epochs with the sample-level plan) is reported; the
page must run without console errors, show K images per modality in each gallery, give
the audio players a source, and its table must change the rows shown when sorted and
filtered.

Chromium is installed by `make setup` (apt-get, when root or with sudo). Without it the
test is skipped with the reason, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _browser import chromium, need_browser, table_rows
from _helpers import skip_real_data

DATA = Path(os.environ.get("MMCOOP_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
K = 4


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as `mmcoop train` + `mmcoop value` leave it (config, valuation files), written directly: real
    avmnist samples (24 per split, debiased), real valuations of a small untrained model, the sample-level plan."""
    if skip_real_data("fsdd"):
        pytest.skip(f"real data folder {DATA} absent (set MMCOOP_DATA)")
    need_browser()
    import torch
    import yaml

    from mmcoop.data import debias, load_dataset
    from mmcoop.enhance import sample_copies
    from mmcoop.models import create_model
    from mmcoop.report import write_report
    from mmcoop.valuation import valuate_dataset

    config = {
        "name": "av",
        "dataset": "avmnist",
        "dataset_options": {"limit": 24},
        "seed": 0,
        "method": "sample-level",
        "debiased": {"strength": 0.8, "mode": "noise"},
        "data_root": str(DATA),
    }
    splits = debias(load_dataset("avmnist", DATA, 0, limit=24), strength=0.8, mode="noise", seed=0)
    torch.manual_seed(0)
    model = create_model("late-fusion", splits.specs, splits.num_classes, dim=8)
    run = tmp_path_factory.mktemp("browser") / "av"
    (run / "valuation").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    valuate_dataset(model, splits.test, split="test").to_parquet(run / "valuation" / "test.parquet")
    for epoch in (2, 3):  # the training set as valued during training, with the planned copies
        torch.manual_seed(epoch)
        model = create_model("late-fusion", splits.specs, splits.num_classes, dim=8)
        table = valuate_dataset(model, splits.train, split="train")
        copies = sample_copies(table.phi)
        for k, m in enumerate(table.modalities):
            table.extras[f"copies_{m}"] = copies[:, k]
        table.to_parquet(run / "valuation" / f"epoch_{epoch:03d}.parquet")
    return write_report(run, top_k=K)


@pytest.fixture(scope="module")
def browser(report: Path, tmp_path_factory: pytest.TempPathFactory):
    with chromium(report, tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


_rows = table_rows


def _header(driver, text: str):
    from selenium.webdriver.common.by import By

    heads = driver.find_elements(By.CSS_SELECTOR, "#mmx-table thead th")
    return next(h for h in heads if h.text.split(" ▲")[0].split(" ▼")[0] == text), [h.text for h in heads]


def test_no_console_errors_and_offline(browser, report: Path) -> None:
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    html = report.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html


def test_gallery_shows_k_images_per_modality_and_audio(browser) -> None:
    from selenium.webdriver.common.by import By

    for m in ("audio", "visual"):
        for side in ("least", "most"):
            gal = browser.find_element(By.CSS_SELECTOR, f'.mmx-gal[data-modality="{m}"][data-side="{side}"]')
            imgs = gal.find_elements(By.CSS_SELECTOR, f'img.mmx-focus[data-modality="{m}"]')
            assert len(imgs) == K
            assert all(i.get_attribute("src").startswith("data:image/png;base64,") for i in imgs)
            assert all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs)
    audios = browser.find_elements(By.CSS_SELECTOR, ".mmx-card audio")
    assert len(audios) >= K
    assert all(a.get_attribute("src").startswith("data:audio/wav;base64,") for a in audios)


def test_sorting_and_filtering_change_the_rows(browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    before = _rows(browser)
    assert len(before) > K
    head, names = _header(browser, "phi visual")
    col = names.index(head.text)
    head.click()
    asc = _rows(browser)
    vals = [float(r[col]) for r in asc]
    assert vals == sorted(vals) and len(asc) == len(before)
    _header(browser, "phi visual")[0].click()
    desc = [float(r[col]) for r in _rows(browser)]
    assert desc == sorted(vals, reverse=True) and desc != vals

    first_id = asc[0][0]
    box = browser.find_element(By.ID, "mmx-f-id")
    box.send_keys(first_id)
    only = _rows(browser)
    assert [r[0] for r in only] == [first_id]
    box.clear()
    box.send_keys(" ")  # an "input" event with an empty filter brings every row back
    assert len(_rows(browser)) == len(before)

    cls = Select(browser.find_element(By.ID, "mmx-f-class"))
    cls.select_by_index(1)
    label = cls.first_selected_option.text
    some = _rows(browser)
    assert 0 < len(some) < len(before) and all(r[1] == label for r in some)
    cls.select_by_index(0)
    deg = Select(browser.find_element(By.ID, "mmx-f-deg"))
    deg.select_by_value("audio")
    deg_col = _header(browser, "degraded")[1].index("degraded")
    rows = _rows(browser)
    assert 0 < len(rows) < len(before) and {r[deg_col] for r in rows} == {"audio"}
    deg.select_by_index(0)


def test_epoch_view_with_copies_and_history(browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    view = Select(browser.find_element(By.ID, "mmx-view"))
    labels = [o.text for o in view.options]
    assert labels[0] == "test split" and [t.split(" (")[0] for t in labels[1:]] == ["epoch 2", "epoch 3"]
    view.select_by_index(2)
    names = _header(browser, "copies audio")[1]
    assert "copies visual" in names
    gal = browser.find_element(By.CSS_SELECTOR, '.mmx-gal[data-modality="audio"][data-side="least"]')
    assert len(gal.find_elements(By.CSS_SELECTOR, 'img.mmx-focus[data-modality="audio"]')) == K
    browser.find_elements(By.CSS_SELECTOR, "#mmx-table tbody tr")[0].click()
    hist = browser.find_element(By.ID, "mmx-history")
    assert "epoch 2" in hist.text and "epoch 3" in hist.text and "test split" not in hist.text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
