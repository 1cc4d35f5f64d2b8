"""ament_python package set-up: console entry points and the files ROS expects under share/."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'jetson_seg'

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
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='jetson_seg developers',
    maintainer_email='jetson-seg@users.noreply.github.com',
    description='Real-time semantic segmentation node for ROS 2 with TF-TRT, TensorFlow and '
                'LiteRT engines, an optimizer node and rosbag evaluation tools.',
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
