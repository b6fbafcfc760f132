"""vaelab.callbacks.throughput (``+callbacks.throughput``, Lightning's ThroughputMonitor):
images are counted, not (x, y) pairs, and a rate is logged."""

from __future__ import annotations

from vaelab.callbacks.throughput import IMAGES_SEEN, logged_rate, logged_scalars
from vaelab.train import train

# -- +callbacks.throughput: Lightning's ThroughputMonitor --------------------------------------
DIGITS_TRAIN_IMAGES = 1797 - 180 - 180  # conf/data/digits.yaml: val_size and test_size 180
DIGITS_BATCH = 100


def test_throughput_callback_counts_images_and_logs_a_rate(make_config):
    cfg = make_config(
        "data=digits",
        f"data.batch_size={DIGITS_BATCH}",
        "trainer.max_epochs=1",
        "test=false",
        "callbacks.image_logger=null",
        "trainer.log_every_n_steps=5",
        "+callbacks.throughput._target_=vaelab.callbacks.throughput.TrainThroughput",
        "+callbacks.throughput.window_size=4",
    )
    train(cfg)
    run_dir = cfg.paths.output_dir
    # 15 batches (the last of 37 images), logged at steps 5, 10 and 15: images are counted,
    # not (x, y) pairs
    seen = logged_scalars(run_dir, IMAGES_SEEN)
    assert seen == [5 * DIGITS_BATCH, 10 * DIGITS_BATCH, DIGITS_TRAIN_IMAGES]
    rate = logged_rate(run_dir)
    assert rate is not None
    assert rate > 0
