"""Labeling and the serve fallback reach the teacher through one client construction."""

from flywheel.config import TeacherConfig
from flywheel.serve.teacher import make_teacher_client
from flywheel.teacher.client import make_client


def test_both_teacher_paths_build_the_same_client_and_differ_only_in_who_retries() -> None:
    teacher = TeacherConfig(
        base_url="http://127.0.0.1:9/v1",
        model="big",
        headers={"x-team": "ops"},
        timeout_s=12.0,
        max_retries=3,
    )
    env = {teacher.api_key_env: "sk-test"}
    labeling = make_client(teacher, env).openai
    serving = make_teacher_client(teacher, env)
    for client in (labeling, serving):
        assert str(client.base_url) == "http://127.0.0.1:9/v1/"
        assert client.timeout == 12.0 and client.api_key == "sk-test"
        assert client.default_headers["x-team"] == "ops"
    # the serve proxy leaves retries to the SDK; the labeling client runs max_retries itself
    assert (serving.max_retries, labeling.max_retries) == (3, 0)
