"""Start jetson_seg's segmentation node.

Usage:
    ros2 launch jetson_seg segmentation.launch.py image:=/camera/image_raw namespace:=front
    ros2 launch jetson_seg segmentation.launch.py use_sim_time:=true   # with a bag's /clock
    ros2 launch jetson_seg segmentation.launch.py image:=/camera/camera/color/image_raw \
        depth:=/camera/camera/aligned_depth_to_color/image_raw \
        depth_camera_info:=/camera/camera/aligned_depth_to_color/camera_info   # RGB-D: 3D out

FASTDDS_DEFAULT_PROFILES_FILE (or Fast DDS 2's FASTRTPS_DEFAULT_PROFILES_FILE), when already set,
is kept: the package's large-image profile is only the default (see README "Fast DDS profile").
It is set in the variable this ROS's Fast DDS reads (Humble, Jazzy: FASTRTPS_..., Kilted:
FASTDDS_...).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable,
                            UnsetEnvironmentVariable)
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def _node(context):
    """The node; model_path/engine override the params file only when given a value."""
    given = {'model_path': LaunchConfiguration('model_path').perform(context),
             'engine': LaunchConfiguration('engine').perform(context)}
    return [Node(
        package='jetson_seg',
        executable='segmentation_node',
        name='segmentation_node',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {key: value for key, value in given.items() if value},
                    {'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                                    value_type=bool)}],
        remappings=[('image', LaunchConfiguration('image')),
                    ('image/compressed', [LaunchConfiguration('image'), '/compressed']),
                    ('camera_info', LaunchConfiguration('camera_info')),
                    ('depth', LaunchConfiguration('depth')),
                    ('depth/compressedDepth', [LaunchConfiguration('depth'), '/compressedDepth']),
                    ('depth/camera_info', LaunchConfiguration('depth_camera_info'))],
    )]


def _fastdds_profile(context):
    """The profile in the variable this ROS's Fast DDS reads (jetson_seg.ros.rclpy_compat)."""
    from jetson_seg.ros.rclpy_compat import fastdds_profile_env

    profile = LaunchConfiguration('fastdds_profile').perform(context)
    return [SetEnvironmentVariable(key, value) if value is not None else
            UnsetEnvironmentVariable(key) for key, value in fastdds_profile_env(profile).items()]


def generate_launch_description():
    share = get_package_share_directory('jetson_seg')
    return LaunchDescription([
        DeclareLaunchArgument('image', default_value='image',
                              description='Camera image topic to segment'),
        DeclareLaunchArgument('camera_info', default_value='camera_info',
                              description='CameraInfo topic of that camera (optional input)'),
        DeclareLaunchArgument('depth', default_value='depth',
                              description='Depth image registered to image (optional input; '
                                          'README "Objects in 3D")'),
        DeclareLaunchArgument('depth_camera_info', default_value='depth/camera_info',
                              description='CameraInfo topic of the depth image'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its outputs'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'segmentation.yaml'),
                              description='Parameters file of the segmentation node'),
        DeclareLaunchArgument('model_path', default_value='',
                              description="Model directory ('' = as in params_file)"),
        DeclareLaunchArgument('engine', default_value='',
                              description='auto | tf | tftrt | litert | onnxruntime '
                                          "('' = as in params_file)"),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Read time from /clock (bag replay)'),
        DeclareLaunchArgument('fastdds_profile',
                              default_value=EnvironmentVariable(
                                  'FASTDDS_DEFAULT_PROFILES_FILE',
                                  default_value=EnvironmentVariable(
                                      'FASTRTPS_DEFAULT_PROFILES_FILE',
                                      default_value=os.path.join(share, 'config',
                                                                 'fastdds_large_images.xml'))),
                              description='Fast DDS profile: the environment\'s if set, else '
                                          'the package\'s, sized for camera images'),
        OpaqueFunction(function=_fastdds_profile),
        OpaqueFunction(function=_node),
    ])
