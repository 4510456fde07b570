// Debian's Fashion-MNIST (package dataset-fashion-mnist), the real data of the learning, crash
// and daemon tests: its path, whether it is installed, and the whole set loaded once per test
// process with limited views of it.
import Foundation
import Training

/// The directory of Debian's Fashion-MNIST (gzip'd IDX files).
public let fashionMNIST = "/usr/share/datasets/fashion-mnist"

/// Whether Fashion-MNIST is installed (its training images are there).
public let haveFashionMNIST = FileManager.default.fileExists(atPath: fashionMNIST + "/train-images-idx3-ubyte.gz")

/// Fashion-MNIST loaded once (normalisation from the full training set).
public let fashionData: Result<PreparedData, Error> = Result {
    try PreparedData.load(DataSpec(kind: .fashion_mnist, path: fashionMNIST, trainLimit: nil, testLimit: nil))
}

/// Fashion-MNIST is needed but could not be loaded.
public struct FashionMNISTMissing: Error, CustomStringConvertible {
    public let underlying: Error
    public var description: String { "Fashion-MNIST is needed (apt-get install -y dataset-fashion-mnist): \(underlying)" }
}

/// The first `train` training and `test` test images of Fashion-MNIST, normalised with the
/// full training set's statistics (as `PreparedData.load` with these limits). Throws
/// FashionMNISTMissing when the dataset cannot be loaded, which fails the calling test.
public func fashion(train: Int, test: Int) throws -> PreparedData {
    switch fashionData {
    case .success(let d):
        return PreparedData(train: d.train.prefix(train), test: d.test.prefix(test), normalisation: d.normalisation)
    case .failure(let e):
        throw FashionMNISTMissing(underlying: e)
    }
}
