#include <sstream>
// Files written by Python's torch.save (Debian's python3-torch) read back without Python.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "io/torch_file.h"
#include "support/test_support.h"

namespace barton::io {
namespace {

TEST(TorchFile, ReadsAStateDictAndAWrappedCheckpoint) {
  test::TempDir tmp;
  const std::string script = R"(
import collections, torch
torch.manual_seed(0)
sd = collections.OrderedDict()
sd["model.0.conv.weight"] = torch.randn(4, 1, 3, 3, 3)
sd["model.0.conv.bias"] = torch.arange(4, dtype=torch.float32)
sd["bn.num_batches_tracked"] = torch.tensor(7)
big = torch.randn(6, 5)
sd["strided"] = big.t()           # non-contiguous view of a shared storage
sd["half"] = torch.ones(3, dtype=torch.float16) * 0.5
torch.save(sd, ")" + tmp.file("sd.pt") +
                             R"(")
torch.save({"model": sd, "epoch": 3, "best_metric": 0.91, "name": "spleen", "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}},
           ")" + tmp.file("ckpt.pt") +
                             R"(")
for k, v in sd.items():
    print(k, float(v.double().sum()), list(v.shape))
)";
  test::write_text(tmp.file("w.py"), script);
  std::string out;
  ASSERT_EQ(test::run_command("/usr/bin/python3 " + tmp.file("w.py"), &out, false), 0) << out;
  for (const auto& file : {tmp.file("sd.pt"), tmp.file("ckpt.pt")}) {
    const auto sd = load_state_dict_file(file);
    ASSERT_EQ(sd.size(), 5u);
    std::istringstream lines(out);
    std::string key;
    double sum;
    std::string shape;
    while (lines >> key >> sum) {
      std::getline(lines, shape);
      ASSERT_TRUE(sd.count(key)) << key;
      EXPECT_NEAR(sd.at(key).to(at::kDouble).sum().item<double>(), sum, 1e-4) << key;
    }
    EXPECT_EQ(sd.at("strided").sizes(), (at::IntArrayRef{5, 6}));
    EXPECT_EQ(sd.at("half").scalar_type(), at::kHalf);
    EXPECT_EQ(sd.at("bn.num_batches_tracked").item<int64_t>(), 7);
  }
  const auto root = load_torch_file(tmp.file("ckpt.pt"));
  EXPECT_EQ(std::get<int64_t>(root.get("epoch")->v), 3);
  EXPECT_NEAR(std::get<double>(root.get("best_metric")->v), 0.91, 1e-12);
  EXPECT_EQ(std::get<std::string>(root.get("name")->v), "spleen");
}

TEST(TorchFile, ErrorsNameTheFile) {
  test::TempDir tmp;
  test::write_text(tmp.file("junk.pt"), "not a zip");
  test::expect_error_containing([&] { load_torch_file(tmp.file("junk.pt")); },
                                tmp.file("junk.pt") + ": not a readable torch.save archive");
  test::expect_error_containing([&] { load_torch_file(tmp.file("none.pt")); },
                                tmp.file("none.pt") + ": no such file");
  test::write_text(tmp.file("w.py"),
                   "import torch\ntorch.save({'epoch': 1}, '" + tmp.file("noweights.pt") + "')\n");
  std::string out;
  ASSERT_EQ(test::run_command("/usr/bin/python3 " + tmp.file("w.py"), &out), 0) << out;
  test::expect_error_containing(
      [&] { load_state_dict_file(tmp.file("noweights.pt")); },
      "no state_dict found under model, state_dict, network, net (top-level keys: epoch)");
}

TEST(TorchFile, DamagedPicklesAreErrorsNotCrashes) {
  // Found by fuzz/torch_file: a tensor rebuilt from something that is not a storage ended in
  // std::bad_variant_access (std::terminate); a storage declaring more elements than its record
  // holds was allocated before it was checked.
  test::TempDir tmp;
  const std::string script = R"(
import collections, io, pickle, sys, torch, zipfile
class NotAStorage:
    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                ("text", 0, (1,), (1,), False, collections.OrderedDict()))
class Huge:
    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (Ref(), 0, (1,), (1,), False, collections.OrderedDict()))
class Ref:
    pass
class P(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Ref):
            return ("storage", torch.FloatStorage, "0", "cpu", 10**15)
        return None
def archive(path, obj):
    buf = io.BytesIO()
    P(buf, protocol=2).dump(collections.OrderedDict([("w", obj)]))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/data/0", bytes(48))
        z.writestr("archive/version", "3\n")
archive(sys.argv[1], NotAStorage())
archive(sys.argv[2], Huge())
)";
  test::write_text(tmp.file("w.py"), script);
  std::string out;
  ASSERT_EQ(test::run_command("/usr/bin/python3 " + tmp.file("w.py") + " " + tmp.file("a.pt") +
                                  " " + tmp.file("b.pt"),
                              &out, false),
            0)
      << out;
  test::expect_error_containing([&] { load_state_dict_file(tmp.file("a.pt")); },
                                tmp.file("a.pt") + ": corrupt tensor record");
  test::expect_error_containing([&] { load_state_dict_file(tmp.file("b.pt")); },
                                tmp.file("b.pt") +
                                    ": storage 0 declares 1000000000000000 elements but holds 48 "
                                    "bytes: the file is truncated or damaged");
}

}  // namespace
}  // namespace barton::io
