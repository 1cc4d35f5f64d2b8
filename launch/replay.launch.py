"""Replay a bag through the segmentation node and record its outputs (ROS installs).

Usage:
    ros2 launch jetson_seg replay.launch.py bag:=/data/run1 record_to:=/data/run1_seg

The player publishes /clock from the bag's time and, with use_sim_time:=true (the default), the
node and the recorder run on it: staleness, rates and recorded times follow the recording.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable,
                            UnsetEnvironmentVariable)
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def _fastdds_profile(context):
    """The profile in the variable this ROS's Fast DDS reads (jetson_seg.ros.rclpy_compat)."""
    from jetson_seg.ros.rclpy_compat import fastdds_profile_env

    profile = LaunchConfiguration('fastdds_profile').perform(context)
    return [SetEnvironmentVariable(key, value) if value is not None else
            UnsetEnvironmentVariable(key) for key, value in fastdds_profile_env(profile).items()]


def generate_launch_description():
    share = get_package_share_directory('jetson_seg')
    bag = LaunchConfiguration('bag')
    image_topic = LaunchConfiguration('image_topic')
    sim_time = {'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                               value_type=bool)}
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='rosbag2 folder to play'),
        DeclareLaunchArgument('record_to', description='bag folder to create for the outputs'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='image topic in the bag'),
        DeclareLaunchArgument('rate', default_value='1.0', description='playback time factor'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'segmentation.yaml'),
                              description='Parameters file of the segmentation node'),
        DeclareLaunchArgument('use_sim_time', default_value='true',
                              description='Node and recorder on the bag time from /clock'),
        DeclareLaunchArgument('fastdds_profile', default_value=EnvironmentVariable(
            'FASTDDS_DEFAULT_PROFILES_FILE', default_value=EnvironmentVariable(
                'FASTRTPS_DEFAULT_PROFILES_FILE',
                default_value=os.path.join(share, 'config', 'fastdds_large_images.xml'))),
            description="Fast DDS profile: the environment's if set, else the package's"),
        OpaqueFunction(function=_fastdds_profile),
        Node(package='jetson_seg', executable='segmentation_node', name='segmentation_node',
             output='screen', parameters=[LaunchConfiguration('params_file'), sim_time],
             remappings=[('image', image_topic)]),
        Node(package='jetson_seg', executable='bag_recorder', name='bag_recorder',
             output='screen', parameters=[sim_time],
             arguments=[LaunchConfiguration('record_to'), '--topics', 'segmentation/mask',
                        'segmentation/detections', 'segmentation/label_info']),
        Node(package='jetson_seg', executable='bag_player', name='bag_player', output='screen',
             arguments=[bag, '--rate', LaunchConfiguration('rate'), '--topics', image_topic,
                        '--clock', '--wait', '120']),  # the model may take a while to load
    ])
