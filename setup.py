"""ament_python package set-up: console entry points and the files ROS expects under share/."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'jetson_seg'
#: Dependency groups (requirements/<group>.txt), also pip extras: a robot installs what it uses.
GROUPS = ('serve', 'litert', 'onnx', 'onnxruntime-cpu', 'tools', 'tf', 'dev')


def requirements(group: str) -> list[str]:
    """The pinned requirements of one group, comments dropped (markers kept)."""
    text = (Path(__file__).resolve().parent / 'requirements' / f'{group}.txt').read_text()
    return [line.split('#')[0].strip() for line in text.splitlines() if line.split('#')[0].strip()]


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*')),
        *((f'share/{PACKAGE}/{folder}', [f for f in glob(f'{folder}/*') if Path(f).is_file()])
          for folder in sorted({str(Path(f).parent) for f in glob('models/**/*', recursive=True)
                                if Path(f).is_file()})),
    ],
    install_requires=['setuptools'],  # ROS packages come from rosdep, the rest from the groups
    extras_require={group: requirements(group) for group in GROUPS},
    zip_safe=True,
    maintainer='jetson_seg developers',
    maintainer_email='jetson-seg@users.noreply.github.com',
    description='Real-time semantic segmentation node for ROS 2 with LiteRT, ONNX Runtime, '
                'TensorRT, TF-TRT and TensorFlow engines, an optimizer node and rosbag tools.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            f'segmentation_node = {PACKAGE}.ros.segmentation_node:main',
            f'optimizer_node = {PACKAGE}.ros.optimizer_node:main',
            f'demo = {PACKAGE}.tools.demo:main',
            f'train = {PACKAGE}.training.train:main',
            f'make_sample_bag = {PACKAGE}.tools.make_sample_bag:main',
            f'bag_player = {PACKAGE}.tools.bag_player:main',
            f'bag_recorder = {PACKAGE}.tools.bag_recorder:main',
            f'evaluate = {PACKAGE}.tools.evaluate:main',
        ],
    },
)
