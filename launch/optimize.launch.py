"""Run jetson_seg's optimizer once with a parameters file.

Usage:
    ros2 launch jetson_seg optimize.launch.py output_dir:=/opt/models/seg
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _node(context):
    """The optimizer; output_dir overrides the params file only when given a value."""
    output_dir = LaunchConfiguration('output_dir').perform(context)
    return [Node(
        package='jetson_seg',
        executable='optimizer_node',
        name='optimizer_node',
        output='screen',
        parameters=[LaunchConfiguration('params_file')]
        + ([{'output_dir': output_dir}] if output_dir else []),
    )]


def generate_launch_description():
    share = get_package_share_directory('jetson_seg')
    return LaunchDescription([
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'optimizer.yaml'),
                              description='Parameters file of the optimizer node'),
        DeclareLaunchArgument('output_dir', default_value='',
                              description="Artefact directory ('' = as in params_file)"),
        OpaqueFunction(function=_node),
    ])
