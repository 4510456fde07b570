// `pruned slurm-script`: the Slurm array task script that runs one run directory per task.
import ArgumentParser
import Training

struct SlurmScript: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm-script",
        abstract: "Print the Slurm array task script (examples/slurm/pruned-array.sbatch): one run directory per task.",
        discussion: "Its header gives the sbatch options; README.md's \"Running on a Slurm cluster\" section the workflow.")

    func run() throws { print(SlurmTask.script, terminator: "") }
}
