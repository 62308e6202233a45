"""The matrix table's columns: a backbone with more stages adds its layers beside the others', not at the end."""

from downstream.report import Result, markdown


def test_layer_columns_stay_together_in_stage_order_when_a_vit_has_more_stages():
    rows = []
    for protocol in ("knn", "linear", "layer1", "layer2", "layer3", "layer4", "finetune"):
        rows.append(Result("conv", "digits", protocol, 0, 50.0))
    for protocol in ("knn", "linear", "layer1", "layer2", "layer3", "layer4", "layer5", "layer6", "finetune"):
        rows.append(Result("vit", "digits", protocol, 0, 60.0))
    header = next(line for line in markdown(rows, "all labels").splitlines() if line.startswith("| checkpoint"))
    columns = [cell.strip() for cell in header.strip("|").split("|")][1:]
    assert columns == ["knn", "linear", "layer1", "layer2", "layer3", "layer4", "layer5", "layer6", "finetune"]
    conv = next(line for line in markdown(rows, "all labels").splitlines() if line.startswith("| conv"))
    assert conv.split("|")[8:10] == ["  ", "  "]  # no layer5, layer6 for the conv net: empty cells
