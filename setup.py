"""Installs mmkd_plugins, knowledge distillation for mmpretrain and mmdet."""

from setuptools import find_packages, setup

setup(
    name='mmkd_plugins',
    version='0.1.0',
    description='Knowledge distillation (KD, DIST, block-wise, CTKD) as an OpenMMLab plugin '
    'for mmpretrain classifiers and mmdet detectors.',
    packages=find_packages(include=['mmkd_plugins', 'mmkd_plugins.*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10.0',
        'mmcv>=2.0.0',
        'mmpretrain>=1.0.0',
    ],
    extras_require={
        'det': ['mmdet>=3.0.0', 'pycocotools'],
        'demo': ['scikit-learn', 'matplotlib'],
        'tests': ['pytest', 'scikit-learn', 'pycocotools'],
    },
)
