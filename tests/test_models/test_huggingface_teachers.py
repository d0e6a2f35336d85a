"""Teachers from HuggingFace transformers (mmpretrain's HuggingFaceClassifier), offline: a model
folder as ``save_pretrained`` writes it (config, image processor, ``model.safetensors``), the
teacher's own preprocessing and input size, its label space checked at build time."""

import pytest
import torch

from mmkd_plugins.models import BlockwiseDistiller, Distiller
from ..conftest import TEACHER_CONFIG
from ..support.classifiers import KD, make_batch, student_model_cfg

transformers = pytest.importorskip('transformers')

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def huggingface_teacher(tmp_path, model_config, **processor):
    """A HuggingFace model folder with random weights and an image processor; the teacher config
    reading it, with its weights from the folder's ``model.safetensors``."""
    torch.manual_seed(0)
    network = transformers.AutoModelForImageClassification.from_config(model_config).eval()
    folder = str(tmp_path / 'hf_model')
    network.save_pretrained(folder)
    transformers.ViTImageProcessor(image_mean=MEAN, image_std=STD, **processor).save_pretrained(
        folder)
    config = dict(model=dict(type='mmpretrain.HuggingFaceClassifier', model_name=folder,
                             pretrained=False))
    return dict(config=config, checkpoint=f'{folder}/model.safetensors'), network


def tiny_resnet(num_labels=10):
    return transformers.ResNetConfig(num_labels=num_labels, embedding_size=8,
                                     hidden_sizes=[8, 16], depths=[1, 1])


def test_a_huggingface_teacher_sees_the_batch_as_its_image_processor_prepares_it(tmp_path):
    """The student's batch (BGR pixels as mmcv loads them, normalized for the student) reaches the
    teacher as the model's image processor prepares the raw pixels (RGB, rescaled by 1/255,
    normalized with its mean and std); its logits are the HuggingFace network's on them."""
    teacher, network = huggingface_teacher(tmp_path, tiny_resnet())
    model = Distiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)
    batch = make_batch()
    data = model.data_preprocessor(batch, training=False)
    processor = transformers.AutoImageProcessor.from_pretrained(teacher['checkpoint'][:-18])
    rgb_images = [image.flip(0).permute(1, 2, 0).numpy() for image in batch['inputs']]
    expected = processor(rgb_images, do_resize=False, return_tensors='pt')['pixel_values']
    got = model.teacher_source.inputs(data['inputs'], data['data_samples'])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    with torch.no_grad():
        torch.testing.assert_close(logits, network(expected).logits, rtol=1e-4, atol=1e-4)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 0 < float(losses['distill.loss_kd']) < float('inf')


def test_a_huggingface_vit_gets_the_batch_at_its_image_size(tmp_path):
    """A HuggingFace ViT built for 32×32 (its config's image_size) for a 16×16 student."""
    vit = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=16,
                                 num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, num_labels=10)
    teacher, _ = huggingface_teacher(tmp_path, vit)
    model = Distiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)
    seen = []
    model.teacher.model.vit.embeddings.patch_embeddings.register_forward_hook(
        lambda module, args, output: seen.append(tuple(args[0].shape[-2:])))
    data = model.data_preprocessor(make_batch(size=16), training=True)
    model.run_teacher(data['inputs'], data['data_samples'])
    assert seen == [(32, 32)]


def test_a_huggingface_teacher_of_another_label_space_is_refused_or_mapped(tmp_path):
    teacher, network = huggingface_teacher(tmp_path, tiny_resnet(num_labels=21))
    with pytest.raises(ValueError, match=r"the teacher predicts 21 classes and the student 10 "
                       r"\(the teacher's model config's num_labels, HuggingFace's"):
        Distiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)
    class_index_map = list(range(1, 21, 2))
    model = Distiller(student=student_model_cfg(),
                      teacher=dict(teacher, class_index_map=class_index_map), distill_losses=KD)
    data = model.data_preprocessor(make_batch(), training=False)
    with torch.no_grad():
        full = network(model.teacher_source.inputs(data['inputs'])).logits
    logits = model.teacher_source.logits(data['inputs'], None, model.student_recorder)
    torch.testing.assert_close(logits, full[:, class_index_map])


def test_a_huggingface_teacher_joins_several_teachers_and_block_wise_refuses_it(
        tmp_path, teacher_checkpoint):
    teacher, _ = huggingface_teacher(tmp_path, tiny_resnet())
    model = Distiller(student=student_model_cfg(), teachers=dict(
        hf=dict(teacher, distill_losses=KD),
        mm=dict(config=TEACHER_CONFIG, checkpoint=teacher_checkpoint, distill_losses=KD)))
    data = model.data_preprocessor(make_batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'distill.hf.loss_kd', 'distill.mm.loss_kd'} <= set(losses)
    with pytest.raises(TypeError, match='block-wise'):
        BlockwiseDistiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)


def test_a_huggingface_model_without_a_readable_image_processor_is_refused(tmp_path):
    teacher, _ = huggingface_teacher(tmp_path, tiny_resnet())
    (tmp_path / 'hf_model' / 'preprocessor_config.json').unlink()
    with pytest.raises(ValueError, match=r'model\.teacher\.config: the image processor of '
                       r'HuggingFace model .* cannot be read'):
        Distiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)
