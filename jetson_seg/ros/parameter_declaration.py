"""Declare ParamSpecs as ROS parameters with descriptors, and refuse invalid values.

Generic: any node's table (node_parameters.py) goes through `declare_all`.
"""

from __future__ import annotations

from typing import Sequence

from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException,
                              NameValidationException)
from rclpy.expand_topic_name import expand_topic_name
from rclpy.validate_full_topic_name import validate_full_topic_name
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)

from jetson_seg.ros.interface import IMAGE
from jetson_seg.ros.node_parameters import ParamSpec, validate

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


def topic_prefix_problem(spec: ParamSpec, value: object, node_name: str,
                         namespace: str) -> str | None:
    """Why an item of a `topic_prefixes` list makes no valid topic name, or None.

    The node's input topic under each prefix is expanded and validated the way rclpy does when
    it creates the subscription, so a name refused here is one configure would fail on (before
    this check, `a//b` passed the parameter and broke configure with nothing logged). Two items
    that name the same topics (`front`, `front/`) are refused too.
    """
    if not spec.topic_prefixes or not isinstance(value, (list, tuple)):
        return None
    seen: dict[str, str] = {}
    for item in value:
        topic = full = IMAGE.under(item)
        try:
            full = expand_topic_name(topic, node_name, namespace)
            validate_full_topic_name(full)
        except NameValidationException as exc:
            reason = str(exc).splitlines()[0].split(': ', 1)[-1].rstrip(':')
            return (f'{spec.name} item {item!r} is not a valid ROS name: {reason} (in '
                    f'{full!r}); use names like front or /robot/front')
        except ValueError as exc:  # rcl refused it before expanding: "... is invalid: why, at"
            reason = str(exc).split(' is invalid: ', 1)[-1].split(', at ')[0]
            return (f'{spec.name} item {item!r} is not a valid ROS name: {reason}; use names '
                    f'like front or /robot/front')
        if full in seen:
            return f'{spec.name} items {seen[full]!r} and {item!r} name the same topics ({full})'
        seen[full] = item
    return None


def declare_all(node, specs: Sequence[ParamSpec]) -> None:
    """Declare every spec on `node` and install a validator that refuses bad values."""
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))

    def check(params) -> SetParametersResult:
        for param in params:
            spec = by_name.get(param.name)
            reason = None if spec is None else validate(spec, param.value) or \
                topic_prefix_problem(spec, param.value, node.get_name(), node.get_namespace())
            if reason is not None:
                node.get_logger().warning(f'refused parameter: {reason}')
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
    for spec in specs:  # values given on the command line bypass the callback: check them too
        value = node.get_parameter(spec.name).value
        reason = validate(spec, value) or \
            topic_prefix_problem(spec, value, node.get_name(), node.get_namespace())
        if reason is not None:
            raise ValueError(f'invalid parameter: {reason}')
