"""Declare ParamSpecs as ROS parameters with descriptors, and refuse invalid values."""

from __future__ import annotations

from typing import Sequence

from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)

from jetson_seg.ros.parameters import ParamSpec, validate

#: What declaring parameters raises for a bad value given on the command line or in a file.
PARAM_ERRORS = (ValueError, InvalidParameterValueException, InvalidParameterTypeException)


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Descriptor with the description, allowed values and numeric range of `spec`."""
    text = spec.description + (f' (one of {", ".join(spec.choices)})' if spec.choices else '')
    text += '; takes effect at once' if spec.runtime else '; takes effect at the next configure'

    desc = ParameterDescriptor(description=text)
    if spec.choices:
        desc.additional_constraints = 'one of: ' + ', '.join(spec.choices)
    if isinstance(spec.default, float) and spec.minimum is not None:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)]
    elif isinstance(spec.default, int) and not isinstance(spec.default, bool) and \
            spec.minimum is not None:
        desc.integer_range = [IntegerRange(from_value=int(spec.minimum),
                                           to_value=int(spec.maximum), step=0)]
    return desc


def declare_all(node, specs: Sequence[ParamSpec]) -> None:
    """Declare every spec on `node` and install a validator that refuses bad values."""
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))

    def check(params) -> SetParametersResult:
        for param in params:
            spec = by_name.get(param.name)
            reason = validate(spec, param.value) if spec is not None else None
            if reason is not None:
                node.get_logger().warning(f'refused parameter: {reason}')
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
    for spec in specs:  # values given on the command line bypass the callback: check them too
        reason = validate(spec, node.get_parameter(spec.name).value)
        if reason is not None:
            raise ValueError(f'invalid parameter: {reason}')
