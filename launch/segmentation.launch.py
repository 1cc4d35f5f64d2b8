"""Start jetson_seg's segmentation node.

Usage:
    ros2 launch jetson_seg segmentation.launch.py image:=/camera/image_raw namespace:=front
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory('jetson_seg')
    return LaunchDescription([
        DeclareLaunchArgument('image', default_value='image',
                              description='Camera image topic to segment'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its outputs'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'segmentation.yaml'),
                              description='Parameters file of the segmentation node'),
        DeclareLaunchArgument('model_path', default_value='',
                              description="Model directory ('' = packaged default model)"),
        DeclareLaunchArgument('engine', default_value='auto',
                              description='auto | tf | tftrt | litert'),
        DeclareLaunchArgument('fastdds_profile',
                              default_value=os.path.join(share, 'config',
                                                         'fastdds_large_images.xml'),
                              description='Fast DDS profile sized for camera images'),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                               LaunchConfiguration('fastdds_profile')),
        Node(
            package='jetson_seg',
            executable='segmentation_node',
            name='segmentation_node',
            namespace=LaunchConfiguration('namespace'),
            output='screen',
            parameters=[LaunchConfiguration('params_file'),
                        {'model_path': LaunchConfiguration('model_path'),
                         'engine': LaunchConfiguration('engine')}],
            remappings=[('image', LaunchConfiguration('image')),
                        ('image/compressed', [LaunchConfiguration('image'), '/compressed'])],
        ),
    ])
