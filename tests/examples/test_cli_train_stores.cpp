// `sfm train` as the quickstart runs it — two ranks under mpiexec (dp = 2, ZeRO-2) on an MDIO survey
// that `sfm synth` wrote — reading the survey from a local path, from nginx on loopback (HTTP range
// requests) and from moto_server (S3, SigV4-signed): the same crops, so the same losses, bit for
// bit, from every store.

#include "cli_run.hpp"
#include "sfm_test.hpp"
#include "train/train_test_util.hpp"

namespace fs = std::filesystem;

TEST_CASE("sfm train under mpiexec -n 2 reads the survey from a path, nginx and S3 with identical losses", "[cli][http][s3]") {
#ifndef SFM_MPIEXEC
  WARN("skipped: this sfm was built without MPI (no mpiexec to launch two ranks)");
  return;
#else
  const fs::path work = sfm::test::scratch_dir("cli_train_stores"), data = work / "data";
  fs::create_directories(data);
  REQUIRE(sfm::test::run_sfm({"synth", "--out", (data / "survey.mdio").string(), "--shape", "48,48,64", "--chunks",
                              "32,32,32", "--seed", "5"}, work).status == 0);
  const sfm::test::Server nginx = sfm::test::start_nginx(data, work);
  const sfm::test::Server moto = sfm::test::start_moto(work);
  const sfm::test::S3Key key = sfm::test::setup_moto_bucket(moto, "sfm-train", "surveys", data, work);
  const std::string aws = "AWS_ACCESS_KEY_ID=" + key.access_key_id + " AWS_SECRET_ACCESS_KEY=" + key.secret_access_key +
                          " AWS_REGION=us-east-1 AWS_ENDPOINT_URL=" + moto.url();

  const std::vector<std::pair<std::string, std::string>> sources{
      {"path", (data / "survey.mdio").string()}, {"http", nginx.url() + "/survey.mdio"},
      {"s3", "s3://sfm-train/surveys/survey.mdio"}};
  std::vector<double> reference;
  for (const auto& [name, url] : sources) {
    const fs::path run = work / ("run-" + name);
    std::string command = "env OMP_NUM_THREADS=1 " + (name == "s3" ? aws : std::string()) + " " + SFM_MPIEXEC +
                          " -n 2 --oversubscribe " + SFM_CLI + " train " + SFM_SOURCE_DIR + "/examples/configs/tiny.json";
    for (const std::string& s : std::vector<std::string>{"data.url=" + url, "train.steps=3", "output.dir=" + run.string(), "output.log_every=1",
                                 "output.images_every=0", "output.checkpoint_every=3", "data.threads=1"})
      command += " --set " + sfm::test::shell_quote(s);
    command += " > " + (work / "train.out").string() + " 2> " + (work / "train.err").string();
    const int status = std::system(command.c_str());
    INFO(name << ": " << url << "\n" << sfm::test::read_text(work / "train.err"));
    REQUIRE(status == 0);
    CHECK(fs::exists(run / "checkpoint-3" / "model.safetensors"));
    const std::vector<double> losses = sfm::test::logged_losses(run);
    REQUIRE(losses.size() == 3);
    if (reference.empty()) reference = losses;
    else CHECK(losses == reference);  // the same crops from every store: the same bits
  }
#endif
}
