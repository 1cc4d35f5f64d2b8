"""Robustness: short variants of `python -m jetson_seg.tools.stress fuzz|soak` (long: README)."""

import pytest

from jetson_seg.tools.stress import fuzz, soak


@pytest.fixture(scope='module')
def stress_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('stress')


def test_malformed_messages_are_rejected_counted_and_valid_frames_answered(ros_env, stress_dir):
    report = fuzz(count=1200, valid_every=100, out=stress_dir,
                  domain_id=int(ros_env['ROS_DOMAIN_ID']))
    assert report['valid_answered'] == report['valid_sent'] == 12
    reasons = set()
    for phase in report['phases']:
        c = phase['counters']
        assert phase['node_alive_at_end'] and phase['exit_code'] == 0, phase
        assert c['received'] == c['answered'] + c['dropped'] + c['rejected'] + c['unwanted'], c
        assert c['unwanted'] == 0, c  # the client subscribes to masks throughout
        assert c['rejected'] >= c['received'] // 2, c  # most were looked at, not just dropped
        reasons |= {k for k in c if k.startswith('rejected.')}
        assert phase['rss_mb_end'] - phase['rss_mb_after_warmup'] < 40, phase
    assert {'rejected.truncated', 'rejected.bad_step', 'rejected.too_large',
            'rejected.zero_size', 'rejected.unsupported_encoding',
            'rejected.corrupt_compressed', 'rejected.unsupported_format'} <= reasons


def test_short_soak_keeps_answering_with_flat_memory(ros_env, stress_dir):
    report = soak(seconds=24, rate=30, out=stress_dir, domain_id=int(ros_env['ROS_DOMAIN_ID']))
    c = report['counters']
    assert report['node_alive_at_end'] and report['exit_code'] == 0
    assert c['received'] == c['answered'] + c['dropped'] + c['rejected'] + c['unwanted'], c
    assert c['rejected'] == 0 and c['unwanted'] == 0, c
    assert c['answered'] > 0.5 * c['received'], c
    assert report['rss_growth_after_warmup'] < 0.05, report['windows']
