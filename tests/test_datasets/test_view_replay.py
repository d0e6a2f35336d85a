"""ReplayStoredView's building blocks: a view replayed from its seed, the transforms it can replay,
and the ones left to the pipeline's own generators."""

import numpy as np

from mmkd_plugins.datasets.transforms import apply_view, first_unreplayable_transform


def test_a_transform_with_its_own_generator_is_found_unreplayable():
    class OwnGenerator:  # draws from an unseeded generator of its own

        def __init__(self):
            self.rng = np.random.default_rng()

        def __call__(self, results):
            return dict(results, img=results['img'] + self.rng.integers(0, 9, (2, 2)))

    class GlobalGenerator:

        def __call__(self, results):
            return dict(results, img=results['img'] + np.random.randint(0, 9, (2, 2)))

    results = dict(img=np.zeros((2, 2), dtype=np.int64))
    assert first_unreplayable_transform([GlobalGenerator()], results, 0, 3) is None
    assert first_unreplayable_transform([GlobalGenerator(), OwnGenerator()], results, 0,
                                        3) == 'OwnGenerator'
    assert first_unreplayable_transform([OwnGenerator()], results, 0, 3,
                                        approximated=['OwnGenerator']) is None


def test_approximated_transforms_draw_from_the_callers_generators():
    """An approximated transform is left out of the stored views and, in training, draws from the
    pipeline's own stream: the replayed transforms around it give the stored view."""

    class Add:

        def __init__(self, scale):
            self.scale = scale

        def __call__(self, results):
            return dict(results, img=results['img'] + self.scale * np.random.randint(1, 9))

    class Jitter(Add):
        pass

    transforms = [Add(1), Jitter(100), Add(10)]
    start = dict(img=np.zeros(1, dtype=np.int64))
    stored = apply_view(transforms, start, 0, 5, 2, ['Jitter'], skip_approximated=True)
    np.random.seed(7)
    trained = apply_view(transforms, start, 0, 5, 2, ['Jitter'])
    after = np.random.randint(1, 9)  # the caller's stream went on past Jitter's one draw
    np.random.seed(7)
    jitter = np.random.randint(1, 9)
    assert trained['img'][0] == stored['img'][0] + 100 * jitter
    assert after == np.random.randint(1, 9)
    assert 11 <= stored['img'][0] <= 88  # the two replayed draws only
